"""cAdvisor's container metric families, one module per category group: which series
exist, their names, types, help, extra labels and how each value comes from a
``Sample`` (cAdvisor's ``lib/metrics/prometheus.go``), plus ``container_state_running``
and ``container_restarts_total`` (ours) and the collector's own ``boxwatch_collector_*``.

``metric_table(devices, cats)`` is the one table both of ``PrometheusSink``'s
serialisers read, so they can never disagree about what is exported; ``cats`` are the
categories chosen by cAdvisor's switches (``categories.included``).

Modules: ``container`` (always exported, and ``pressure``), ``cpu`` (cpu, percpu,
cpuLoad), ``memory`` (memory, memory_numa, cpuset, oom_event), ``disk`` (disk, diskIO),
``network`` (network, tcp, udp), ``process``, ``hugetlb``; ``categories`` (the
switches), ``selfstats`` (not per sample).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from collector.metrics import container, cpu, disk, hugetlb, memory, network, process
from collector.metrics.base import NS, US, Family, Values, active, batch_flags
from collector.metrics.categories import DEFAULT, MetricsError, included
from collector.metrics.disk import LAYER_ROWS, DeviceNames
from collector.metrics.selfstats import PAUSED_FAMILY, SELF_METRICS, SINK_METRICS, STATE_FAMILY

__all__ = [
    "DEFAULT", "LAYER_ROWS", "NS", "PAUSED_FAMILY", "SELF_METRICS", "SINK_METRICS",
    "STATE_FAMILY", "US",
    "DeviceNames", "Family", "MetricsError", "Values", "active", "batch_flags", "by_category",
    "included", "metric_table",
]

# exposition order of the categories
ORDER = ("always", "cpu", "cpuLoad", "memory", "cpuset", "memory_numa", "oom_event",
         "hugetlb", "disk", "diskIO", "network", "tcp", "udp", "process", "pressure")


def by_category(devices: Callable[[str], str], per_cpu: bool) -> dict[str, list[Family]]:
    """Every family this collector can export, by cAdvisor category ("always": none)."""
    out: dict[str, list[Family]] = {}
    for part in (container.families(), cpu.families(per_cpu), memory.families(),
                 disk.families(devices), network.families(), process.families(),
                 hugetlb.families()):
        for cat, rows in part.items():
            out.setdefault(cat, []).extend(rows)
    return out


def metric_table(devices: Callable[[str], str], cats: Collection[str] = DEFAULT,
                 per_cpu: bool | None = None) -> list[Family]:
    """The exported families of the categories ``cats``, in exposition order.
    ``per_cpu`` defaults to whether ``percpu`` is among them."""
    table = by_category(devices, "percpu" in cats if per_cpu is None else per_cpu)
    return [f for cat in ORDER if cat == "always" or cat in cats for f in table.get(cat, [])]
