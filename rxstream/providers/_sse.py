r"""Incremental Server-Sent Events decoder over raw body bytes (pure, no I/O).

Implements the WHATWG HTML "Event stream interpretation" rules that the Anthropic and
OpenAI SDKs' own ``SSEDecoder`` follow (``anthropic/_streaming.py``): lines end in CRLF,
LF or CR; a blank line dispatches the event; ``:`` starts a comment; a single space after
the colon is dropped; several ``data:`` lines are joined with ``\\n``; unknown fields are
ignored. It decodes bytes only once a whole line is available, so a multi-byte UTF-8
character split across network reads is never broken.

It is faster than the SDKs' decoder because it splits whole buffers with ``bytes.split``
instead of looping per line in Python, which matters at 100,000 events per stream.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "ServerSentEvent"]


class ServerSentEvent:
    """One dispatched event: ``event`` name (or None) and ``data`` (UTF-8 bytes, lines joined)."""

    __slots__ = ("data", "event")

    def __init__(self, event: str | None, data: bytes) -> None:
        self.event = event
        self.data = data

    def __repr__(self) -> str:
        return f"ServerSentEvent(event={self.event!r}, data={self.data[:80]!r})"


class SSEDecoder:
    r"""Feed raw body chunks, get complete `ServerSentEvent` objects back.

    Example:
        >>> d = SSEDecoder()
        >>> [e.data for e in d.feed(b"event: x\\ndata: {}\\n\\nda")]
        [b'{}']
    """

    __slots__ = ("_buf", "_data", "_event", "_has_data")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[bytes] = []
        self._has_data = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume a chunk of body bytes; return the events it completed (possibly none)."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # Rare: CR or CRLF line endings. Normalize complete line breaks; keep a trailing
            # lone CR in the buffer since its LF may arrive in the next chunk.
            if buf.endswith(b"\r"):
                buf, tail = buf[:-1], b"\r"
            else:
                tail = b""
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = buf.split(b"\n")
            self._buf = lines.pop() + tail
        else:
            lines = buf.split(b"\n")
            self._buf = lines.pop()
        out: list[ServerSentEvent] = []
        for line in lines:
            if line:
                self._line(line)
            elif self._has_data or self._event is not None:
                out.append(self._dispatch())
        return out

    def flush(self) -> list[ServerSentEvent]:
        """End of body: dispatch a final event that lacked its blank line (lenient, like the SDKs)."""
        out: list[ServerSentEvent] = []
        if self._buf:
            line, self._buf = self._buf.rstrip(b"\r"), b""
            if line:
                self._line(line)
        if self._has_data or self._event is not None:
            out.append(self._dispatch())
        return out

    def _dispatch(self) -> ServerSentEvent:
        data = self._data
        event = ServerSentEvent(self._event, data[0] if len(data) == 1 else b"\n".join(data))
        self._event = None
        self._data = []
        self._has_data = False
        return event

    def _line(self, line: bytes) -> None:
        if line[:5] == b"data:":
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value)
            self._has_data = True
            return
        if line[:1] == b":":
            return
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"event":
            self._event = value.decode("utf-8", "replace")
        elif field == b"data":  # "data" with no colon: an empty data line
            self._data.append(value)
            self._has_data = True
        # "id", "retry" and unknown fields are ignored: no LLM stream here relies on them.
