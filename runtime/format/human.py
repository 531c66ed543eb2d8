"""Docker's human-readable numbers: go-units ``HumanDuration``, ``HumanSize`` and
``BytesSize``, and the STATUS column of ``docker ps`` (moby ``State.String()``).

Users read these strings and scripts grep them ("Up ", "Exited (137)"), so they
follow docker's exact wording and thresholds rather than our own taste.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from formats.units import parse_rfc3339

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_S = 1_000_000_000
_MIN = 60 * _S
_HOUR = 60 * _MIN

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def human_duration(d_ns: int | float) -> str:
    """go-units HumanDuration: "Less than a second", "1 second", "About a minute",
    "3 hours", "13 days", "6 weeks", "23 months", "2 years"."""
    d = int(d_ns)
    seconds = d // _S if d > 0 else 0
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = d // _MIN
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = (2 * d + _HOUR) // (2 * _HOUR)  # Go: int(d.Hours() + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{d // _HOUR // 24 // 365} years"


def _scaled(size: float, base: float, units: tuple[str, ...], precision: int = 4) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("1.024kB", "3.42GB")."""
    return _scaled(float(size), 1000.0, _DECIMAL_UNITS)


def human_size_precision(size: float, precision: int) -> str:
    """go-units HumanSizeWithPrecision: decimal units, ``precision`` significant digits
    (``%.*g``: "1.23kB", "0B", and Go's exponent form where %g takes it, "1e+03kB")."""
    return _scaled(float(size), 1000.0, _DECIMAL_UNITS, precision)


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("1MiB", "3.42GiB")."""
    return _scaled(float(size), 1024.0, _BINARY_UNITS)


def time_ago(ns: int, now_ns: int | None = None) -> str:
    """docker's CREATED column: ``HumanDuration(now - t) + " ago"``."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return human_duration(now_ns - ns) + " ago"


def _when(value: Any) -> int | None:
    """A State timestamp as ns, or None for Go's zero time ("0001-01-01T00:00:00Z")."""
    if not value:
        return None
    if isinstance(value, int | float):
        return int(value)
    ns = parse_rfc3339(str(value))
    return None if ns <= parse_rfc3339("0001-01-01T00:00:00Z") else ns


def _health(state: Mapping[str, Any]) -> str | None:
    health = state.get("Health")
    status = health.get("Status") if isinstance(health, Mapping) else None
    if not status or status == "none":
        return None
    return "health: starting" if status == "starting" else str(status)


def ps_status(state: Mapping[str, Any], now_ns: int | None = None) -> str:
    """The STATUS column of ``docker ps`` from an inspect ``State`` dict, as moby's
    ``State.String()`` words it ("Up 5 seconds (Paused)", "Exited (137) 2 minutes ago")."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    started, finished = _when(state.get("StartedAt")), _when(state.get("FinishedAt"))
    exit_code = int(state.get("ExitCode") or 0)
    if state.get("Running"):
        up = human_duration(now_ns - (started or now_ns))
        if state.get("Paused"):
            return f"Up {up} (Paused)"
        if state.get("Restarting"):
            return f"Restarting ({exit_code}) {human_duration(now_ns - (finished or now_ns))} ago"
        health = _health(state)
        return f"Up {up} ({health})" if health else f"Up {up}"
    if state.get("RemovalInProgress") or state.get("Status") == "removing":
        return "Removal In Progress"
    if state.get("Dead"):
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        return ""
    return f"Exited ({exit_code}) {human_duration(now_ns - finished)} ago"
