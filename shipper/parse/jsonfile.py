"""The one parser of Docker's json-file lines.

A line is ``{"log":"...","stream":"stdout","time":"<RFC3339Nano>"}`` with an optional
``"attrs":{...}`` (labels/env/tag a ``--log-opt`` asked for); see moby
``daemon/logger/jsonfilelog``. ``log`` keeps its trailing newline on whole lines and has
none on 16 KiB partials. Self-contained on purpose: the shipper never imports ``runtime``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Iterator

import orjson

from shipper.parse.model import LogEntry, ParseError

__all__ = ["LogEntry", "ParseError", "parse_line", "parse_lines", "parse_time"]

# RFC 3339 as Go's time.Time.UnmarshalJSON takes it: zone required, any fraction length.
_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
_cache: tuple[str, int] = ("", 0)  # (YYYY-MM-DDTHH:MM:SS, epoch secs): one tuple, thread-safe


def parse_time(text: str) -> int:
    """RFC 3339 (dockerd writes UTC with ``Z``) -> ns since the epoch; ValueError if not."""
    global _cache
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(f"invalid RFC 3339 time {text!r}")
    prefix = text[:19]
    cached_prefix, secs = _cache
    if prefix != cached_prefix:  # consecutive lines share their second: skip the calendar
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]
                and h < 24 and mi < 60 and s < 60):
            raise ValueError(f"invalid RFC 3339 time {text!r}")
        secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        _cache = (prefix, secs)
    frac, zone = m.group(7), m.group(8)
    ns = secs * 1_000_000_000
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        ns -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * 1_000_000_000
    return ns


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
