"""cAdvisor's container metric families: which series exist, their names, types, help,
extra labels and how each value comes from a ``Sample`` (``lib/metrics/prometheus.go``),
plus ``container_state_running`` (ours) and the collector's own ``boxwatch_collector_*``
families. One table, read by both of ``PrometheusSink``'s serialisers, so they can never
disagree about what is exported.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, NamedTuple

from cgroupstats.model import Sample

NS = 1e-9
US = 1e-6
Values = list[tuple[tuple[str, ...], float]]  # (extra label values, value)


class Family(NamedTuple):
    """One metric family. With no ``extra`` labels, ``get`` returns the container's one
    value or None (no series); with extra labels it returns ``Values``."""

    name: str
    type: str  # counter / gauge / untyped
    help: str
    extra: tuple[str, ...]
    get: Callable[[Sample], Any]


def _cpu_usage(s: Sample) -> Values:
    # cAdvisor: cpu="total" unless per-cpu metrics are enabled (then cpu00, cpu01, ...)
    return [(("total",), s.cpu.usage_ns * NS)]


def _cpu_usage_per_cpu(s: Sample) -> Values:
    if not s.cpu.per_cpu_ns:
        return _cpu_usage(s)
    return [((f"cpu{i:02d}",), v * NS) for i, v in enumerate(s.cpu.per_cpu_ns) if v > 0]


def _faults(s: Sample) -> Values:
    # memory.stat's total_* (v1) and v2's memory.stat are hierarchical; the group-only
    # ("container" scope) counters are not read.
    m = s.memory
    return [(("pgfault", "hierarchy"), m.pgfault), (("pgmajfault", "hierarchy"), m.pgmajfault)]


def _dev(field: str, devices: Callable[[str], str]) -> Callable[[Sample], Values]:
    get = attrgetter(field)
    return lambda s: [((devices(d),), get(io)) for d, io in s.blkio.items()] if s.blkio else []


def _net(field: str) -> Callable[[Sample], Values]:
    get = attrgetter(field)
    return lambda s: [((n,), get(v)) for n, v in s.network.items()] if s.network else []


def _psi(kind: str, line: str) -> Callable[[Sample], float | None]:
    def get(s: Sample) -> float | None:
        psi = getattr(s.psi, kind)
        return None if psi is None else getattr(psi, line).total_us * US

    return get


def _layer(field: str) -> Callable[[Sample], Values]:
    # the writable layer's filesystem, as cAdvisor's fs families: one series per device
    get = attrgetter(field)
    return lambda s: [((s.writable_layer.device,), get(s.writable_layer))] \
        if s.writable_layer is not None else []


# container_fs_usage_bytes is the writable layer's size (collector.layers, moby's SizeRw,
# what ``docker ps -s`` shows); container_fs_limit_bytes the capacity of its filesystem.
LAYER_ROWS = (
    ("container_fs_limit_bytes", "gauge",
     "Number of bytes that can be consumed by the container on this filesystem.",
     ("device",), _layer("limit")),
    ("container_fs_usage_bytes", "gauge",
     "Number of bytes that are consumed by the container on this filesystem.",
     ("device",), _layer("usage")),
)


def _if_quota(fn: Callable[[Sample], float]) -> Callable[[Sample], float | None]:
    # cAdvisor exports the cfs counters only for containers with a quota
    return lambda s: fn(s) if s.spec.cpu_quota_us else None


def _if_v2(fn: Callable[[Sample], float]) -> Callable[[Sample], float | None]:
    return lambda s: fn(s) if s.ref.cgroup_version == 2 else None


class DeviceNames:
    """"8:0" -> "/dev/sda" from ``<sys>/dev/block/8:0/uevent`` (cAdvisor's ``device``
    label is the device path); the major:minor itself when unknown. Cached."""

    def __init__(self, sys_root: str = "/sys") -> None:
        self.sys_root = sys_root
        self._names: dict[str, str] = {}

    def __call__(self, majmin: str) -> str:
        name = self._names.get(majmin)
        if name is None:
            name = majmin
            try:
                with open(f"{self.sys_root}/dev/block/{majmin}/uevent") as f:
                    for line in f:
                        if line.startswith("DEVNAME="):
                            name = "/dev/" + line[8:].strip()
            except OSError:
                pass
            self._names[majmin] = name
        return name


def metric_table(devices: Callable[[str], str], per_cpu: bool = False) -> list[Family]:
    """Every container family, in exposition order."""
    c, g, a = "counter", "gauge", attrgetter
    rows = [
        ("container_cpu_usage_seconds_total", c, "Cumulative cpu time consumed in seconds.",
         ("cpu",), _cpu_usage_per_cpu if per_cpu else _cpu_usage),
        ("container_cpu_user_seconds_total", c, "Cumulative user cpu time consumed in seconds.",
         (), lambda s: s.cpu.user_ns * NS),
        ("container_cpu_system_seconds_total", c,
         "Cumulative system cpu time consumed in seconds.", (), lambda s: s.cpu.system_ns * NS),
        ("container_cpu_cfs_periods_total", c, "Number of elapsed enforcement period intervals.",
         (), _if_quota(a("cpu.nr_periods"))),
        ("container_cpu_cfs_throttled_periods_total", c, "Number of throttled period intervals.",
         (), _if_quota(a("cpu.nr_throttled"))),
        ("container_cpu_cfs_throttled_seconds_total", c,
         "Total time duration the container has been throttled.", (),
         _if_quota(lambda s: s.cpu.throttled_ns * NS)),
        ("container_memory_usage_bytes", g,
         "Current memory usage in bytes, including all memory regardless of when it was accessed",
         (), a("memory.usage")),
        ("container_memory_working_set_bytes", g, "Current working set in bytes.", (),
         a("memory.working_set")),
        ("container_memory_rss", g, "Size of RSS in bytes.", (), a("memory.rss")),
        ("container_memory_cache", g, "Number of bytes of page cache memory.", (),
         a("memory.cache")),
        ("container_memory_mapped_file", g, "Size of memory mapped files in bytes.", (),
         a("memory.mapped_file")),
        ("container_memory_swap", g, "Container swap usage in bytes.", (), a("memory.swap")),
        ("container_memory_failcnt", "untyped", "Number of memory usage hits limits", (),
         a("memory.failcnt")),
        ("container_memory_failures_total", c, "Cumulative count of memory allocation failures.",
         ("failure_type", "scope"), _faults),
        ("container_memory_max_usage_bytes", g, "Maximum memory usage recorded in bytes", (),
         a("memory.max_usage")),
        ("container_memory_events_high_total", c,
         "Cumulative count of memory.high throttle events for the container", (),
         _if_v2(a("memory.events_high"))),
        ("container_memory_events_max_total", c,
         "Cumulative count of memory.max limit hit events for the container", (),
         _if_v2(a("memory.events_max"))),
        ("container_oom_events_total", c,
         "Count of out of memory events observed for the container",
         (), a("memory.events_oom_kill")),
        ("container_fs_reads_bytes_total", c, "Cumulative count of bytes read", ("device",),
         _dev("read_bytes", devices)),
        ("container_fs_reads_total", c, "Cumulative count of reads completed", ("device",),
         _dev("read_ops", devices)),
        ("container_fs_writes_bytes_total", c, "Cumulative count of bytes written", ("device",),
         _dev("write_bytes", devices)),
        ("container_fs_writes_total", c, "Cumulative count of writes completed", ("device",),
         _dev("write_ops", devices)),
        ("container_network_receive_bytes_total", c, "Cumulative count of bytes received",
         ("interface",), _net("rx_bytes")),
        ("container_network_receive_packets_total", c, "Cumulative count of packets received",
         ("interface",), _net("rx_packets")),
        ("container_network_receive_packets_dropped_total", c,
         "Cumulative count of packets dropped while receiving", ("interface",), _net("rx_dropped")),
        ("container_network_receive_errors_total", c,
         "Cumulative count of errors encountered while receiving", ("interface",),
         _net("rx_errors")),
        ("container_network_transmit_bytes_total", c, "Cumulative count of bytes transmitted",
         ("interface",), _net("tx_bytes")),
        ("container_network_transmit_packets_total", c, "Cumulative count of packets transmitted",
         ("interface",), _net("tx_packets")),
        ("container_network_transmit_packets_dropped_total", c,
         "Cumulative count of packets dropped while transmitting", ("interface",),
         _net("tx_dropped")),
        ("container_network_transmit_errors_total", c,
         "Cumulative count of errors encountered while transmitting", ("interface",),
         _net("tx_errors")),
        ("container_threads", g, "Number of threads running inside the container", (),
         a("pids.current")),
        ("container_threads_max", g,
         "Maximum number of threads allowed inside the container, infinity if value is zero",
         (), a("pids.max")),
        ("container_pressure_cpu_stalled_seconds_total", c,
         "Total time duration no tasks in the container could make progress due to CPU congestion.",
         (), _psi("cpu", "full")),
        ("container_pressure_cpu_waiting_seconds_total", c,
         "Total time duration tasks in the container have waited due to CPU congestion.", (),
         _psi("cpu", "some")),
        ("container_pressure_memory_stalled_seconds_total", c,
         "Total time duration no tasks in the container could make progress due to memory "
         "congestion.",
         (), _psi("memory", "full")),
        ("container_pressure_memory_waiting_seconds_total", c,
         "Total time duration tasks in the container have waited due to memory congestion.", (),
         _psi("memory", "some")),
        ("container_pressure_io_stalled_seconds_total", c,
         "Total time duration no tasks in the container could make progress due to IO congestion.",
         (), _psi("io", "full")),
        ("container_pressure_io_waiting_seconds_total", c,
         "Total time duration tasks in the container have waited due to IO congestion.", (),
         _psi("io", "some")),
        ("container_spec_cpu_period", g, "CPU period of the container.", (),
         a("spec.cpu_period_us")),
        ("container_spec_cpu_quota", g, "CPU quota of the container.", (),
         lambda s: s.spec.cpu_quota_us or None),
        ("container_spec_cpu_shares", g, "CPU share of the container.", (), a("spec.cpu_shares")),
        ("container_spec_memory_limit_bytes", g, "Memory limit for the container.", (),
         a("spec.memory_limit")),
        ("container_spec_memory_swap_limit_bytes", g, "Memory swap limit for the container.", (),
         a("spec.swap_limit")),
        ("container_spec_memory_reservation_limit_bytes", g,
         "Memory reservation limit for the container.", (), a("spec.memory_reservation")),
        ("container_start_time_seconds", g,
         "Start time of the container since unix epoch in seconds.", (),
         lambda s: s.ref.started_at or None),
        ("container_last_seen", g, "Last time a container was seen by the exporter", (),
         lambda s: s.timestamp_ns // 1_000_000_000),
        ("container_restarts_total", c,
         "Number of times the container was restarted (Docker's RestartCount).", (),
         a("ref.restart_count")),
    ]
    return [Family(*row) for row in (*rows, *LAYER_ROWS)]


# Ours, not cAdvisor's: one series per container whose state file says running, from
# discovery rather than from a sample, so it stays while the cgroup cannot be read and
# ``container_state_running unless container_last_seen`` finds a running but silent one.
# Its ``get`` takes the ContainerRef (there may be no Sample).
STATE_FAMILY = Family(
    "container_state_running", "gauge",
    "1 while the container's state file says it is running, whether or not it can be sampled.",
    (), lambda ref: 1.0,
)


# Ours too: 1 while the state file says the container is paused (frozen by `box pause` /
# `docker pause`), 0 for the other running ones; beside container_state_running.
PAUSED_FAMILY = Family(
    "container_state_paused", "gauge",
    "1 while the container's state file says it is paused (frozen), 0 while it runs.",
    (), lambda ref: 1.0 if ref.paused else 0.0,
)


# boxwatch_collector_*: (name, type, help, SelfStats attribute)
SELF_METRICS = (
    ("boxwatch_collector_samples_total", "counter", "Container samples taken.", "samples_total"),
    ("boxwatch_collector_read_errors_total", "counter",
     "Container reads that failed with a parse or OS error.", "read_errors_total"),
    ("boxwatch_collector_gone_total", "counter",
     "Container groups that vanished between discovery and read (skipped, not errors).",
     "gone_total"),
    ("boxwatch_collector_containers", "gauge", "Containers being sampled.", "containers"),
    ("boxwatch_collector_scan_duration_seconds", "gauge",
     "Duration of the last discovery scan.", "scan_duration_seconds"),
    ("boxwatch_collector_read_duration_seconds", "gauge",
     "Duration of reading every container in the last interval.", "read_duration_seconds"),
)
# per sink: (name, type, help, health() key)
SINK_METRICS = (
    ("boxwatch_collector_sink_written_total", "counter", "Points the sink delivered.", "written"),
    ("boxwatch_collector_sink_write_errors_total", "counter", "Failed writes of the sink.",
     "write_errors"),
    ("boxwatch_collector_sink_buffered_points", "gauge",
     "Points held by the sink waiting for delivery.", "buffered_points"),
    ("boxwatch_collector_sink_dropped_points_total", "counter",
     "Points dropped because the sink's buffer was full.", "dropped_points"),
)
