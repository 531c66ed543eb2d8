"""What every container-log parser produces (json-file here, CRI in the shipper), and how
it fails."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of a container log file.

    ``log`` is the message bytes as the container wrote them (unescaped); ``partial`` is
    True when ``log`` does not end with a newline: a 16 KiB piece of a longer line, or the
    unterminated rest at EOF, to be joined with the entries that follow it.
    """

    log: bytes
    stream: str
    time_ns: int
    partial: bool
    attrs: dict[str, str] | None = None


class ParseError(ValueError):
    """A line that is not a valid entry; carries the raw line and why."""

    def __init__(self, raw: bytes, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        shown = raw if len(raw) <= 120 else raw[:120] + b"..."
        super().__init__(f"cannot parse log line {shown!r}: {reason}")
