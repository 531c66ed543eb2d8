"""The one parser of Docker's json-file lines.

A line is ``{"log":"...","stream":"stdout","time":"<RFC3339Nano>"}`` with an optional
``"attrs":{...}`` (labels/env/tag a ``--log-opt`` asked for); see moby
``daemon/logger/jsonfilelog``. ``log`` keeps its trailing newline on whole lines and has
none on 16 KiB partials. ``box logs`` and the shipper both read through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import orjson

from formats.logentry import LogEntry, ParseError
from formats.units import parse_rfc3339

__all__ = ["LogEntry", "ParseError", "parse_line", "parse_lines", "parse_time"]

def parse_time(text: str) -> int:
    """A line's ``time``: RFC 3339 as Go's ``time.Time.UnmarshalJSON`` takes it (zone
    required, any fraction length) -> ns since the epoch; ValueError if not."""
    return parse_rfc3339(text, strict=True)


def parse_line(raw: bytes) -> LogEntry:
    """One json-file line (trailing newline optional) -> LogEntry, or ParseError."""
    if raw[:1] == b"\x00":
        raise ParseError(raw, "NUL padding (file extended but never written, e.g. after a crash)")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ParseError(raw, f"not JSON: {err}") from None
    if not isinstance(obj, dict):
        raise ParseError(raw, f"not a JSON object but {type(obj).__name__}")
    # moby writes "log" with omitempty: an empty message has no "log" key at all.
    log, stream, ts = obj.get("log", ""), obj.get("stream"), obj.get("time")
    for name, value in (("log", log), ("stream", stream), ("time", ts)):
        if not isinstance(value, str):
            reason = "missing" if value is None else f"not a string but {type(value).__name__}"
            raise ParseError(raw, f'field "{name}" {reason}')
    try:
        time_ns = parse_time(ts)
    except ValueError:
        raise ParseError(raw, f'bad "time" {ts!r}') from None
    attrs = obj.get("attrs")
    if attrs is not None and not (isinstance(attrs, dict)
                                  and all(isinstance(v, str) for v in attrs.values())):
        raise ParseError(raw, f'"attrs" is not an object of strings: {attrs!r}')
    data = log.encode()
    return LogEntry(data, stream, time_ns, not data.endswith(b"\n"), attrs or None)


def parse_lines(lines: Iterable[bytes],
                on_error: Callable[[ParseError], None] | None = None) -> Iterator[LogEntry]:
    """Parse many lines; a bad one raises, or goes to ``on_error`` and is skipped."""
    for raw in lines:
        try:
            yield parse_line(raw)
        except ParseError as err:
            if on_error is None:
                raise
            on_error(err)
