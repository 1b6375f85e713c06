"""Sinks: where streams leave (terminal, notebook, web).

* `RichLiveHandler`: a rich live view of the accumulated text plus a stats line (needs the
  ``cli`` extra: ``pip install 'rxstream[cli]'``; rich is imported only when the handler is
  created).
* `rxstream.sinks.notebook`: live display in Jupyter (public as `rxstream.notebook`).
* `rxstream.sinks.web`: Server-Sent Events out and in (public as `rxstream.web`).
"""

from __future__ import annotations

from rxstream.sinks.terminal import RichLiveHandler

__all__ = ["RichLiveHandler"]
