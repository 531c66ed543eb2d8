"""Joining partial lines: json-file 16 KiB chunks without a trailing newline, CRI ``P``
lines. One :class:`Joiner` per (file, stream), since stdout and stderr chunks interleave.

A joined line is capped at ``max_bytes`` (``--max-line-bytes``): the rest is dropped (the
chunks are still consumed) and the entry flagged truncated. A line whose end never comes
is flushed after a timeout as it is, flagged partial.
"""

from __future__ import annotations

DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_FLUSH_TIMEOUT = 5.0  # seconds; Fluent Bit's docker_mode_flush is 4


def byte_len(piece: str | bytes) -> int:
    """Length in UTF-8 bytes (ASCII text costs nothing to measure)."""
    if isinstance(piece, bytes) or piece.isascii():
        return len(piece)
    return len(piece.encode("utf-8", "surrogatepass"))


def cut(piece: str | bytes, n: int) -> str | bytes:
    """The first ``n`` bytes of ``piece``; a str cut inside a character loses that character."""
    if isinstance(piece, bytes):
        return piece[:n]
    if piece.isascii():
        return piece[:n]
    return piece.encode("utf-8", "surrogatepass")[:n].decode("utf-8", "ignore")


class Joiner:
    """The chunks of one unfinished line. ``start`` is the file offset where its first
    chunk's line began (reading must resume there after a crash), ``time_ns`` the first
    chunk's time (moby stamps every chunk of a line with it), ``since`` when it began on
    the monotonic clock."""

    __slots__ = ("parts", "size", "start", "end", "time_ns", "since", "truncated", "max_bytes")

    def __init__(self, max_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.parts: list[str | bytes] = []
        self.size = 0
        self.start = -1  # -1: empty
        self.end = 0  # offset just past the last chunk's line
        self.time_ns = 0
        self.since = 0.0
        self.truncated = False

    @property
    def active(self) -> bool:
        return self.start >= 0

    def add(self, piece: str | bytes, start: int, end: int, time_ns: int, now: float) -> None:
        """Append one chunk (its line spans ``start``..``end`` in the file)."""
        if self.start < 0:
            self.start, self.time_ns, self.since = start, time_ns, now
        self.end = end
        if self.truncated:
            return
        room = self.max_bytes - self.size
        n = byte_len(piece)
        if n > room:
            piece = cut(piece, room)
            n = byte_len(piece)
            self.truncated = True
        if n:
            self.parts.append(piece)
            self.size += n

    def take(self, last: str | bytes = "") -> tuple[str | bytes, bool]:
        """Finish the line with ``last`` (the final chunk, possibly empty); returns the
        joined message and whether it was truncated, and empties the joiner."""
        self.add(last, self.start, self.end, self.time_ns, self.since)
        parts, truncated = self.parts, self.truncated
        self.parts, self.size, self.start, self.truncated = [], 0, -1, False
        if not parts:
            return last[:0], truncated
        if len(parts) == 1:
            return parts[0], truncated
        if isinstance(parts[0], bytes):
            return b"".join(p if isinstance(p, bytes) else p.encode() for p in parts), truncated
        return "".join(p if isinstance(p, str) else p.decode("utf-8", "replace")
                       for p in parts), truncated
