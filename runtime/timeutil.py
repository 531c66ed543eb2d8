"""What ``--since``/``--until`` accept. The units themselves (RFC 3339, Go durations) are
the bottom layer's: ``formats.units``."""

from __future__ import annotations

import re
import time

from formats.units import parse_duration_ns, parse_rfc3339


def parse_time_arg(text: str, now_ns: int | None = None) -> int:
    """What ``docker logs --since/--until`` accept: RFC3339, a Unix timestamp
    (``1700000000.5``) or a duration relative to now (``10m``) -> ns since epoch."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    t = text.strip()
    if re.fullmatch(r"\d+(\.\d{1,9})?", t):
        whole, _, frac = t.partition(".")
        return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") if frac else 0)
    try:
        return now_ns - parse_duration_ns(t)
    except ValueError:
        pass
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        t += "T00:00:00Z"
    try:
        return parse_rfc3339(t)
    except ValueError:
        raise ValueError(f"invalid time value {text!r}: use RFC3339, a Unix timestamp or a "
                         "duration like 10m") from None


def created_ns(text: object) -> int | None:
    """An optional ``created`` field (image config, history entry) -> ns since epoch;
    None when it is missing, empty or not a timestamp: the OCI spec makes it optional."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


# --- docker's GetTimestamp (docker/cli, api/types/time) ---------------------------------

_GO_DURATION = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+", re.ASCII)
_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
             "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
# docker's layouts -> a regex of the same fields (Go's fixed-width numbers)
_D = r"(\d{4})-(\d{2})-(\d{2})"
_Z = r"(Z|[+-]\d{2}:\d{2})"
_LAYOUTS = {
    "2006-01-02": re.compile(_D + r"\Z"),
    "2006-01-02Z07:00": re.compile(_D + _Z + r"\Z"),
    "2006-01-02T15": re.compile(_D + r"T(\d{2})\Z"),
    "2006-01-02T15:04": re.compile(_D + r"T(\d{2}):(\d{2})\Z"),
    "2006-01-02T15:04:05": re.compile(_D + r"T(\d{2}):(\d{2}):(\d{2})\Z"),
    "2006-01-02T15:04:05.999999999": re.compile(_D + r"T(\d{2}):(\d{2}):(\d{2})\.(\d{1,9})\Z"),
    "2006-01-02T15Z07:00": re.compile(_D + r"T(\d{2})" + _Z + r"\Z"),
    "2006-01-02T15:04Z07:00": re.compile(_D + r"T(\d{2}):(\d{2})" + _Z + r"\Z"),
    "2006-01-02T15:04:05Z07:00": re.compile(_D + r"T(\d{2}):(\d{2}):(\d{2})" + _Z + r"\Z"),
    "2006-01-02T15:04:05.999999999Z07:00": re.compile(
        _D + r"T(\d{2}):(\d{2}):(\d{2})\.(\d{1,9})" + _Z + r"\Z"),
}


def _q(text: str) -> str:
    """Go's %q, near enough: quoted, control characters escaped (one line always)."""
    import json

    return json.dumps(text, ensure_ascii=False)


def go_duration_ns(text: str) -> int:
    """Go's ``time.ParseDuration`` (sign allowed, ``0`` alone too); ValueError otherwise."""
    if text in ("0", "+0", "-0"):
        return 0
    if not _GO_DURATION.fullmatch(text):
        raise ValueError(f"time: invalid duration {_q(text)}")
    total = sum(float(m.group(1)) * _GO_UNITS[m.group(2)]
                for m in _GO_DURATION_PART.finditer(text))
    return -int(total) if text.startswith("-") else int(total)


def _layout(value: str) -> tuple[str, bool]:
    """docker's choice of layout for ``value``, and whether it is read in local time."""
    local = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    if "." in value:
        return ("2006-01-02T15:04:05.999999999" if local
                else "2006-01-02T15:04:05.999999999Z07:00"), local
    if "T" in value:
        colons = value.count(":")
        if not local and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the zone's colon
        names = (("2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05") if local else
                 ("2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05Z07:00"))
        return names[min(colons, 2)], local
    return ("2006-01-02" if local else "2006-01-02Z07:00"), local


def _parse_layout(value: str, layout: str, local: bool, now_ns: int) -> int:
    import calendar

    m = _LAYOUTS[layout].match(value)
    if m is None:
        raise ValueError(f'parsing time {_q(value)} as "{layout}": cannot parse {_q(value)} '
                         f'as "{layout}"')
    groups = list(m.groups())
    zone = groups.pop() if layout.endswith("Z07:00") else None
    frac = groups.pop() if ".999" in layout else ""
    nums = [int(g) for g in groups] + [0] * (6 - len(groups))
    y, mo, d, h, mi, s = nums
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24
            and mi < 60 and s < 60):
        raise ValueError(f"parsing time {_q(value)}: value out of range")
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    if local:
        secs -= time.localtime(now_ns // 1_000_000_000).tm_gmtoff
    elif zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        secs -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return secs * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


def docker_timestamp(value: str, now_ns: int | None = None) -> int:
    """``docker events --since/--until`` (docker/cli's ``GetTimestamp``): a Go duration
    before now (``10m``, ``1h30m``, ``-5m`` is in the future), an RFC 3339 time or date
    (local time without a zone), or Unix seconds (``1700000000.5``) -> ns since epoch.
    ValueError with docker's message otherwise."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if value != "0":
        try:
            return now_ns - go_duration_ns(value)
        except ValueError:
            pass
    layout, local = _layout(value)
    try:
        return _parse_layout(value, layout, local, now_ns)
    except ValueError:
        if "-" in value:
            raise
    whole, dot, frac = value.partition(".")
    if not re.fullmatch(r"[+-]?\d+", whole, re.ASCII) or (
            dot and not re.fullmatch(r"[+-]?\d+", frac, re.ASCII)):
        raise ValueError(f"failed to parse value as time or duration: {_q(value)}") from None
    sign = -1 if whole.startswith("-") else 1
    ns = int(whole) * 1_000_000_000
    if dot:
        digits = frac.lstrip("+-")
        ns += sign * int(int(digits) * 10 ** (9 - len(digits))) if len(digits) <= 9 else \
            sign * int(int(digits) / 10 ** (len(digits) - 9))
    return ns
