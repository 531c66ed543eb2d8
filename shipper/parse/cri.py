"""The CRI log format kubelet, containerd and CRI-O write, and telling it from json-file.

A line is ``<RFC3339Nano time> <stream> <tags> <content>``: ``tags`` is ``:``-separated,
its first tag ``F`` (full: the content ends a line) or ``P`` (partial: the next ``P``/``F``
of the same stream continues it); the newline ending the line in the file is framing, not
content (kubernetes ``pkg/kubelet/kuberuntime/logs``, containerd ``pkg/cri/io/logger``).
"""

from __future__ import annotations

from typing import Literal

from formats.jsonfile.parser import parse_time
from formats.logentry import ParseError

Format = Literal["json-file", "cri"]
STREAMS = frozenset({"stdout", "stderr"})


def parse_cri(raw: bytes) -> tuple[int, str, bool, bytes]:
    """One CRI line (no trailing newline) -> (time_ns, stream, partial, content)."""
    parts = raw.split(b" ", 3)
    if len(parts) == 3:  # "<time> <stream> F" with the separator of an empty content eaten
        parts.append(b"")
    if len(parts) != 4:
        raise ParseError(raw, "not a CRI line: fewer than 3 space-separated fields")
    ts, stream_b, tags, content = parts
    try:
        time_ns = parse_time(ts.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ParseError(raw, f"bad CRI time {ts[:40]!r}") from None
    stream = stream_b.decode("ascii", "replace")
    if stream not in STREAMS:
        raise ParseError(raw, f"unknown stream {stream!r}")
    tag = tags.split(b":", 1)[0]
    if tag == b"F":
        return time_ns, stream, False, content
    if tag == b"P":
        return time_ns, stream, True, content
    raise ParseError(raw, f"unknown CRI tag {tags[:20]!r} (want P or F)")


def detect_format(path: str, first_line: bytes) -> Format:
    """Docker names its logs ``<id>-json.log``; otherwise a line opening with ``{`` is
    json-file and one opening with a digit (a timestamp) is CRI. Undecidable lines count as
    json-file, whose parser then reports them as parse errors."""
    if path.endswith("-json.log") or ".log." in path and "-json.log." in path:
        return "json-file"
    head = first_line.lstrip(b"\x00")[:1]
    if head.isdigit():
        return "cri"
    return "json-file"
