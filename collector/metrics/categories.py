"""cAdvisor's metric categories and its two switches, ``--enable_metrics`` and
``--disable_metrics`` (``container/factory.go``'s MetricKind names, ``cmd/cadvisor.go``'s
default ignore set and flag rules), and which of them this collector exports.

cAdvisor's rules, kept: each flag takes a comma-separated list; a name it does not know
is an error; ``--enable_metrics`` (when not empty) is the whole set and overrides
``--disable_metrics``; ``--disable_metrics`` *replaces* the default ignore set (so
``--disable_metrics=percpu`` turns tcp, udp, process, ... on, as in cAdvisor).

A category this collector does not export is refused at start, one line each naming it
and why, rather than accepted and ignored. ``perf_event`` and ``app`` are in cAdvisor's
default set yet export nothing there without ``--perf_events_config`` / application
metric labels; they stay inert here likewise unless named in ``--enable_metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable

ALL = (
    "cpu", "sched", "percpu", "memory", "memory_numa", "cpuLoad", "diskIO", "disk",
    "network", "tcp", "advtcp", "udp", "app", "process", "hugetlb", "perf_event",
    "referenced_memory", "cpu_topology", "resctrl", "cpuset", "oom_event", "pressure",
)
DEFAULT_IGNORED = frozenset({
    "memory_numa", "tcp", "udp", "advtcp", "sched", "process", "hugetlb",
    "referenced_memory", "cpu_topology", "resctrl", "cpuset",
})
DEFAULT = frozenset(ALL) - DEFAULT_IGNORED
# category -> why it is not exported (refused when asked for)
NOT_EXPORTED = {
    "sched": "needs every task's /proc/<pid>/schedstat summed per sample; not implemented",
    "advtcp": "cAdvisor's /proc/<pid>/net/netstat and snmp counters; not implemented",
    "app": "application metrics scraped from endpoints declared by container labels; "
           "not implemented",
    "perf_event": "needs --perf_events_config and hardware performance counters "
                  "(perf_event_open); not implemented",
    "referenced_memory": "works by clearing every process's referenced bits "
                         "(/proc/<pid>/clear_refs), changing what it measures; not implemented",
    "resctrl": "needs Intel RDT / AMD PQoS (/sys/fs/resctrl); not implemented",
}
INERT_BY_DEFAULT = frozenset({"perf_event", "app"})


class MetricsError(ValueError):
    """Bad ``--enable_metrics`` / ``--disable_metrics``: one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _names(flag: str, value: str) -> list[str]:
    names = [n for n in value.split(",") if n] if value else []
    bad = [n for n in names if n not in ALL]
    if bad:
        raise MetricsError([f"{flag}: unsupported metric {n!r} specified (options: "
                            f"{','.join(sorted(ALL))})" for n in bad])
    return names


def included(enable: str | None = None, disable: str | None = None) -> frozenset[str]:
    """The categories exported under cAdvisor's flag rules; MetricsError naming each
    unknown or not-exported category that was asked for."""
    enabled = _names("--enable_metrics", enable or "")
    if enabled:
        chosen, asked, flag = frozenset(enabled), frozenset(enabled), "--enable_metrics"
    else:
        ignored = DEFAULT_IGNORED if disable is None else frozenset(
            _names("--disable_metrics", disable))
        chosen, asked = frozenset(ALL) - ignored, frozenset(ALL) - ignored - INERT_BY_DEFAULT
        flag = "--disable_metrics"
    refused = sorted(asked & NOT_EXPORTED.keys())
    if refused:
        hint = "" if flag == "--enable_metrics" else " (add it to --disable_metrics)"
        raise MetricsError([f"{flag}: {n} is not exported: {NOT_EXPORTED[n]}{hint}"
                            for n in refused])
    return chosen - NOT_EXPORTED.keys()


def describe(cats: Iterable[str]) -> str:
    return ",".join(sorted(cats))
