"""Sinks: handlers that render a stream somewhere (terminal, ...).

* `RichLiveHandler`: a rich live view of the accumulated text plus a stats line (needs the
  ``cli`` extra: ``pip install 'rxstream[cli]'``; rich is imported only when the handler is
  created).
"""

from __future__ import annotations

from rxstream.sinks.terminal import RichLiveHandler

__all__ = ["RichLiveHandler"]
