"""rxstream in Jupyter: `display_stream` renders a stream live in the cell output.

Needs the ``notebook`` extra (``pip install 'rxstream[notebook]'``: IPython, and ipywidgets
for the optional Stop button). See `rxstream.sinks.notebook`.

Example:
    >>> import rxstream as rxs
    >>> response = await rxs.notebook.display_stream_async(stream)  # doctest: +SKIP
"""

from __future__ import annotations

from rxstream.sinks.notebook import StreamDisplay, display_stream, display_stream_async

__all__ = ["StreamDisplay", "display_stream", "display_stream_async"]
