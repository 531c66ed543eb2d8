"""cAdvisor's ``cpu``, ``percpu`` and ``cpuLoad`` families.

``percpu`` adds no family: it turns ``container_cpu_usage_seconds_total``'s ``cpu``
label from "total" into one series per cpu (cpu00, cpu01, ...) where the kernel
counts per cpu (v1 cpuacct.usage_percpu; v2 has no per-cpu usage: "total").
``cpuLoad`` values are cAdvisor's milli-load (``int(load*1000)``, its unit).
"""

from __future__ import annotations

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, NS, Family, Values, attr, extra, fams, if_quota

TASK_STATES = ("sleeping", "running", "stopped", "uninterruptible", "iowaiting")


def _usage(s: Sample) -> Values:
    return [(("total",), s.cpu.usage_ns * NS)]


def _usage_per_cpu(s: Sample) -> Values:
    if not s.cpu.per_cpu_ns:
        return _usage(s)
    return [((f"cpu{i:02d}",), v * NS) for i, v in enumerate(s.cpu.per_cpu_ns) if v > 0]


def _tasks(t: object) -> Values:
    return [((state,), float(getattr(t, field))) for state, field in zip(
        TASK_STATES, ("sleeping", "running", "stopped", "uninterruptible", "iowait"), strict=True)]


def families(per_cpu: bool) -> dict[str, list[Family]]:
    return {
        "cpu": fams(
            ("container_cpu_user_seconds_total", COUNTER,
             "Cumulative user cpu time consumed in seconds.", (), lambda s: s.cpu.user_ns * NS),
            ("container_cpu_system_seconds_total", COUNTER,
             "Cumulative system cpu time consumed in seconds.", (),
             lambda s: s.cpu.system_ns * NS),
            ("container_cpu_usage_seconds_total", COUNTER,
             "Cumulative cpu time consumed in seconds.", ("cpu",),
             _usage_per_cpu if per_cpu else _usage),
            ("container_cpu_cfs_periods_total", COUNTER,
             "Number of elapsed enforcement period intervals.", (),
             if_quota(attr("cpu.nr_periods"))),
            ("container_cpu_cfs_throttled_periods_total", COUNTER,
             "Number of throttled period intervals.", (), if_quota(attr("cpu.nr_throttled"))),
            ("container_cpu_cfs_throttled_seconds_total", COUNTER,
             "Total time duration the container has been throttled.", (),
             if_quota(lambda s: s.cpu.throttled_ns * NS)),
            ("container_cpu_cfs_burst_periods_total", COUNTER,
             "Number of periods when burst occurs.", (), if_quota(attr("cpu.nr_bursts"))),
            ("container_cpu_cfs_burst_seconds_total", COUNTER,
             "Total time duration the container has been bursted.", (),
             if_quota(lambda s: s.cpu.burst_ns * NS)),
        ),
        "cpuLoad": fams(
            ("container_cpu_load_average_10s", GAUGE,
             "Value of container cpu load average over the last 10 seconds.", (),
             extra("tasks", attr("load"))),
            ("container_cpu_load_d_average_10s", GAUGE,
             "Value of container cpu load.d average over the last 10 seconds.", (),
             extra("tasks", attr("load_d"))),
            ("container_tasks_state", GAUGE, "Number of tasks in given state", ("state",),
             extra("tasks", _tasks, [])),
        ),
    }
