"""rxstream operators: use with ``pipe`` (docs alias ``from rxstream import operators as rso``).

Every operator is a factory that validates its arguments when called and returns
``Callable[[Observable[A]], Observable[B]]``.

* ``text()``: ``Observable[StreamEvent] -> Observable[str]``, the text deltas.
* ``snapshots()``: ``Observable[StreamEvent] -> Observable[Response]``, after every event.
* ``final()``: ``Observable[StreamEvent] -> Observable[Response]``, one value at completion::

      events:   -S--t--t--t--E-|
      final():  -------------R|
"""

from __future__ import annotations

from rxstream.operators._basic import final, snapshots, text

__all__ = ["final", "snapshots", "text"]
