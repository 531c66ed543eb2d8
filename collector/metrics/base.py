"""What every category module builds on: the ``Family`` row and the value helpers.

A family's ``get`` takes a ``Sample``: with no ``extra`` labels it returns the
container's one value or None (no series); with extra labels, ``Values``: a list of
(extra label values, value), empty for no series.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, NamedTuple

from cgroupstats.model import Sample

NS = 1e-9
US = 1e-6
Values = list[tuple[tuple[str, ...], float]]  # (extra label values, value)
COUNTER, GAUGE = "counter", "gauge"


class Family(NamedTuple):
    """One metric family, with cAdvisor's name, TYPE, HELP and extra label names."""

    name: str
    type: str  # counter / gauge (cAdvisor's; never changed to please a linter)
    help: str
    extra: tuple[str, ...]
    get: Callable[[Sample], Any]


def fams(*rows: tuple[str, str, str, tuple[str, ...], Callable[[Sample], Any]]) -> list[Family]:
    return [Family(*row) for row in rows]


def attr(path: str) -> Callable[[Sample], Any]:
    """``s.<path>`` (dotted)."""
    return attrgetter(path)


def if_v2(fn: Callable[[Sample], float]) -> Callable[[Sample], float | None]:
    """Only on cgroup v2 (the kernel writes the counter there only)."""
    return lambda s: fn(s) if s.ref.cgroup_version == 2 else None


def if_quota(fn: Callable[[Sample], float]) -> Callable[[Sample], float | None]:
    """cAdvisor exports the cfs counters only for containers with a quota."""
    return lambda s: fn(s) if s.spec.cpu_quota_us else None


def extra(group: str, fn: Callable[[Any], Any], default: Any = None) -> Callable[[Sample], Any]:
    """``fn(s.extra.<group>)`` when that opt-in group was read, else no series."""
    get = attrgetter(group)

    def value(s: Sample) -> Any:
        ex = s.extra
        part = None if ex is None else get(ex)
        return default if part is None or part == {} else fn(part)

    return value


def per_key(group: str) -> Callable[[Sample], Values]:
    """A mapping of the opt-in ``group`` (state -> count) as one series per key."""
    return extra(group, lambda m: [((k,), v) for k, v in m.items()], [])
