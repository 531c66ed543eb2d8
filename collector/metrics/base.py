"""What every category module builds on: the ``Family`` row and the value helpers.

A family's ``get`` takes a ``Sample``: with no ``extra`` labels it returns the
container's one value or None (no series); with extra labels, ``Values``: a list of
(extra label values, value), empty for no series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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


WHEN: dict[Callable[[Sample], Any], str] = {}  # a family's get -> its batch flag


def only_when(flag: str, fn: Callable[[Sample], Any]) -> Callable[[Sample], Any]:
    """Mark ``fn`` as giving series only when the batch has ``flag`` (``batch_flags``):
    a scrape skips it for every container otherwise (a v1 host has no v2-only counter,
    a throttle-only blkio no merged requests), which keeps rendering ~80 families cheap."""
    WHEN[fn] = flag
    return fn


def batch_flags(samples: Iterable[Sample]) -> set[str]:
    """What the batch has: "v2" when a sample is of a v2 group, "io:<group>" for each
    optional blkio group a device has (``IoStats.has``)."""
    flags: set[str] = set()
    for s in samples:
        if s.ref.cgroup_version == 2:
            flags.add("v2")
        if s.blkio:
            for io in s.blkio.values():
                if io.has:
                    flags.update("io:" + g for g in io.has)
    return flags


def active(families: Sequence[Family], flags: set[str]) -> list[bool]:
    """Per family: may it have a series in a batch with ``flags``?"""
    return [WHEN.get(f.get, "") in flags or f.get not in WHEN for f in families]


def if_v2(fn: Callable[[Sample], float]) -> Callable[[Sample], float | None]:
    """Only on cgroup v2 (the kernel writes the counter there only)."""
    return only_when("v2", lambda s: fn(s) if s.ref.cgroup_version == 2 else None)


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
