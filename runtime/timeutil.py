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
