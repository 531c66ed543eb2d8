"""Docker's timestamps: RFC3339Nano in UTC with a ``Z`` and trailing zeros trimmed
(Go's ``time.RFC3339Nano``), and the durations ``--since``/``--until`` accept."""

from __future__ import annotations

import re
import time


def rfc3339nano(ns: int | None = None) -> str:
    """``2024-05-01T10:11:12.123456789Z``; fractional zeros are trimmed as Go does."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_rfc3339(text: str) -> int:
    """RFC3339 (any fraction length, Z or offset; no zone means UTC) -> ns since epoch."""
    m = _RFC3339_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid timestamp {text!r}")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    import calendar  # lazy: not needed on the `box run` path

    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    ns = secs * 1_000_000_000
    if frac:
        ns += int(frac.ljust(9, "0"))
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1_000_000_000
    return ns


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration_ns(text: str) -> int:
    """Go duration syntax (``1h30m``, ``10s``, ``250ms``) -> ns."""
    pos, total = 0, 0.0
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return int(total)


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
        raise ValueError(f"invalid time value {text!r}: use RFC3339, a Unix timestamp or a duration like 10m") from None


def created_ns(text: object) -> int | None:
    """An optional ``created`` field (image config, history entry) -> ns since epoch;
    None when it is missing, empty or not a timestamp: the OCI spec makes it optional."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
