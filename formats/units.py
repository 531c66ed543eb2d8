"""Units every program reads and writes: RFC 3339 times, durations, sizes. One parser each.

- Times: ``rfc3339nano`` writes Go's ``time.RFC3339Nano`` (UTC, ``Z``, trailing fraction
  zeros trimmed), what json-file lines and ``config.v2.json`` hold; ``parse_rfc3339`` reads
  them back to ns. ``strict`` is Go's ``time.UnmarshalJSON`` (``T``, a zone, any fraction
  length): what a json-file line must be. Otherwise also ``t``/space as separator, no zone
  (UTC) and ``+0200``: what people type on a command line.
- Durations: ``parse_duration_ns`` takes Go's syntax (``1h30m``, ``250ms``, ``1.5s``); with
  ``bare_seconds`` a plain number is seconds (the collector's ``--interval 2.5``), without
  it is an error as in Go (``docker run --health-interval 5``). ``d`` and ``w`` only with
  ``days``: Go has no such units, a log search does.
- Sizes: docker has two and means both. ``ram_in_bytes`` is go-units ``RAMInBytes``
  (binary: ``-m 32m``, ``1GiB``, ``512k``); ``from_human_size`` is ``FromHumanSize``
  (decimal: ``--log-opt max-size=10m`` is 10,000,000 bytes).

Errors are ``ValueError`` with a one-line message; callers add the flag's name. Standard
library only and cheap to import (``box run`` loads it): ``calendar`` and ``fractions``
are imported when first needed.
"""

from __future__ import annotations

import re
import time

from formats.lazyre import lazy_compile

# --- times ---------------------------------------------------------------------------------


def rfc3339nano(ns: int | None = None) -> str:
    """``2024-05-01T10:11:12.123456789Z``; fractional zeros are trimmed as Go does."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


_STRICT_TIME = lazy_compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
_LENIENT_TIME = lazy_compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?\Z",
    re.ASCII)
_cache: tuple[str, int] = ("", 0)  # (YYYY-MM-DDTHH:MM:SS, epoch secs): one tuple, thread-safe


def parse_rfc3339(text: str, strict: bool = False) -> int:
    """RFC 3339 -> ns since the epoch (see the module docstring); ValueError if not one."""
    global _cache
    if not strict:
        text = text.strip()
    m = (_STRICT_TIME if strict else _LENIENT_TIME).match(text)
    if m is None:
        raise ValueError(f"invalid RFC 3339 time {text!r}")
    prefix = text[:10] + "T" + text[11:19]
    cached_prefix, secs = _cache
    if prefix != cached_prefix:  # consecutive lines share their second: skip the calendar
        import calendar

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
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1_000_000_000
    return ns


# --- durations -----------------------------------------------------------------------------

_DURATION_PART = lazy_compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)")
_BARE_NUMBER = lazy_compile(r"\d+(?:\.\d*)?|\.\d+")
UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
           "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
           "w": 604_800_000_000_000}


def parse_duration_ns(text: str, bare_seconds: bool = False, days: bool = False) -> int:
    """Go duration syntax (``1h30m``, ``10s``, ``250ms``) -> ns; never negative."""
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    if bare_seconds and _BARE_NUMBER.fullmatch(value):
        return int(float(value) * 1_000_000_000)
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(value):
        if m.start() != pos or (m.group(2) in "dw" and not days):
            break
        total += float(m.group(1)) * UNIT_NS[m.group(2)]
        pos = m.end()
    if pos != len(value) or pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return int(total)


def parse_duration(text: str | float, bare_seconds: bool = True) -> float:
    """``parse_duration_ns`` in seconds; a number passes through (config files)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}")
        return float(text)
    return parse_duration_ns(str(text), bare_seconds) / 1e9


# --- sizes ---------------------------------------------------------------------------------

_RAM = lazy_compile(r"([0-9]+(?:\.[0-9]+)*) ?([kmgtp])?i?b?", re.IGNORECASE | re.ASCII)
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_DECIMAL = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_GO_FLOAT = lazy_compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
INT64_MAX = (1 << 63) - 1


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``"32m"`` -> 33554432, a plain number is bytes, binary
    multiples, case-insensitive, optional ``i`` and ``b``; fractions truncate like Go's
    ``int64()``. ValueError ``invalid size: '<text>'``."""
    m = _RAM.fullmatch(text)
    if m is not None:
        from fractions import Fraction

        try:
            number = Fraction(m.group(1))
        except ValueError:  # "1.2.3": the regex lets it through, ParseFloat does not
            number = None
        if number is not None:
            size = int(number * _BINARY.get((m.group(2) or "").lower(), 1))
            if size <= INT64_MAX:
                return size
    raise ValueError(f"invalid size: '{text}'")


def from_human_size(text: str) -> int:
    """go-units ``FromHumanSize``: decimal units (``10m`` = 10,000,000; ``1KiB`` = 1000 too),
    with go-units' error messages."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] != " ":
        num, sfx = text[:sep + 1], text[sep + 1:]
    else:
        num, sfx = text[:sep], text[sep + 1:]
    if not _GO_FLOAT.fullmatch(num):
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{sfx}'")
    if low[0] == "b":
        if len(low) > 1:
            raise ValueError(f"invalid suffix: '{low}'")
        return int(size)
    if low[0] not in _DECIMAL or (len(low) == 2 and low[1] != "b") \
            or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{low}'")
    return int(size * _DECIMAL[low[0]])
