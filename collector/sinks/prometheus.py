"""Prometheus: the latest samples as cAdvisor's metric families, built fresh per scrape.

Names, types, help strings and labels follow cAdvisor (``lib/metrics/prometheus.go``) so
existing dashboards and alert rules work: every series carries ``id`` (the cgroup path),
``name``, ``image`` and ``container_label_<key>`` for whitelisted labels, the union over
all containers (empty where a container lacks one), as cAdvisor does. Unlimited limits
are 0. ``collect()`` is prometheus_client's custom-collector interface; ``render()``
writes the same families straight to the text format, which is what ``/metrics`` serves
(several times cheaper than going through ``generate_latest``).
"""

from __future__ import annotations

import re
from argparse import Namespace
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import Metric

from collector.model import Sample
from collector.sinks.base import Sink

NS = 1e-9
US = 1e-6
_INVALID = re.compile(r"[^a-zA-Z0-9_]")

Values = list[tuple[tuple[str, ...], float]]  # (extra label values, value)
Getter = Callable[[Sample], Values]


def sanitize(name: str) -> str:
    """cAdvisor's sanitizeLabelName: anything but [a-zA-Z0-9_] becomes "_"."""
    return _INVALID.sub("_", name)


def _one(fn: Callable[[Sample], float]) -> Getter:
    return lambda s: [((), fn(s))]


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


def _dev(field: str, devices: Callable[[str], str]) -> Getter:
    return lambda s: [((devices(d),), getattr(io, field)) for d, io in s.blkio.items()]


def _net(field: str) -> Getter:
    return lambda s: [((name,), getattr(n, field)) for name, n in s.network.items()]


def _psi(kind: str, line: str) -> Getter:
    def get(s: Sample) -> Values:
        psi = getattr(s.psi, kind)
        return [] if psi is None else [((), getattr(psi, line).total_us * US)]

    return get


def _if_quota(fn: Callable[[Sample], float]) -> Getter:
    # cAdvisor exports the cfs counters only for containers with a quota
    return lambda s: [((), fn(s))] if s.spec.cpu_quota_us else []


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


# (name, type, help, extra label names, getter); order is exposition order.
def metric_table(devices: Callable[[str], str], per_cpu: bool = False) -> list[tuple]:
    c, g = "counter", "gauge"
    return [
        ("container_cpu_usage_seconds_total", c, "Cumulative cpu time consumed in seconds.",
         ("cpu",), _cpu_usage_per_cpu if per_cpu else _cpu_usage),
        ("container_cpu_user_seconds_total", c, "Cumulative user cpu time consumed in seconds.",
         (), _one(lambda s: s.cpu.user_ns * NS)),
        ("container_cpu_system_seconds_total", c,
         "Cumulative system cpu time consumed in seconds.", (), _one(lambda s: s.cpu.system_ns * NS)),
        ("container_cpu_cfs_periods_total", c, "Number of elapsed enforcement period intervals.",
         (), _if_quota(lambda s: s.cpu.nr_periods)),
        ("container_cpu_cfs_throttled_periods_total", c, "Number of throttled period intervals.",
         (), _if_quota(lambda s: s.cpu.nr_throttled)),
        ("container_cpu_cfs_throttled_seconds_total", c,
         "Total time duration the container has been throttled.", (),
         _if_quota(lambda s: s.cpu.throttled_ns * NS)),
        ("container_memory_usage_bytes", g,
         "Current memory usage in bytes, including all memory regardless of when it was accessed",
         (), _one(lambda s: s.memory.usage)),
        ("container_memory_working_set_bytes", g, "Current working set in bytes.", (),
         _one(lambda s: s.memory.working_set)),
        ("container_memory_rss", g, "Size of RSS in bytes.", (), _one(lambda s: s.memory.rss)),
        ("container_memory_cache", g, "Number of bytes of page cache memory.", (),
         _one(lambda s: s.memory.cache)),
        ("container_memory_mapped_file", g, "Size of memory mapped files in bytes.", (),
         _one(lambda s: s.memory.mapped_file)),
        ("container_memory_swap", g, "Container swap usage in bytes.", (),
         _one(lambda s: s.memory.swap)),
        ("container_memory_failcnt", "untyped", "Number of memory usage hits limits", (),
         _one(lambda s: s.memory.failcnt)),
        ("container_memory_failures_total", c, "Cumulative count of memory allocation failures.",
         ("failure_type", "scope"), _faults),
        ("container_memory_max_usage_bytes", g, "Maximum memory usage recorded in bytes", (),
         _one(lambda s: s.memory.max_usage)),
        ("container_memory_events_high_total", c,
         "Cumulative count of memory.high throttle events for the container", (),
         lambda s: [((), s.memory.events_high)] if s.ref.cgroup_version == 2 else []),
        ("container_memory_events_max_total", c,
         "Cumulative count of memory.max limit hit events for the container", (),
         lambda s: [((), s.memory.events_max)] if s.ref.cgroup_version == 2 else []),
        ("container_oom_events_total", c, "Count of out of memory events observed for the container",
         (), _one(lambda s: s.memory.events_oom_kill)),
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
         _one(lambda s: s.pids.current)),
        ("container_threads_max", g,
         "Maximum number of threads allowed inside the container, infinity if value is zero",
         (), _one(lambda s: s.pids.max)),
        ("container_pressure_cpu_stalled_seconds_total", c,
         "Total time duration no tasks in the container could make progress due to CPU congestion.",
         (), _psi("cpu", "full")),
        ("container_pressure_cpu_waiting_seconds_total", c,
         "Total time duration tasks in the container have waited due to CPU congestion.", (),
         _psi("cpu", "some")),
        ("container_pressure_memory_stalled_seconds_total", c,
         "Total time duration no tasks in the container could make progress due to memory congestion.",
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
         _one(lambda s: s.spec.cpu_period_us)),
        ("container_spec_cpu_quota", g, "CPU quota of the container.", (),
         lambda s: [((), s.spec.cpu_quota_us)] if s.spec.cpu_quota_us else []),
        ("container_spec_cpu_shares", g, "CPU share of the container.", (),
         _one(lambda s: s.spec.cpu_shares)),
        ("container_spec_memory_limit_bytes", g, "Memory limit for the container.", (),
         _one(lambda s: s.spec.memory_limit)),
        ("container_spec_memory_swap_limit_bytes", g, "Memory swap limit for the container.", (),
         _one(lambda s: s.spec.swap_limit)),
        ("container_spec_memory_reservation_limit_bytes", g,
         "Memory reservation limit for the container.", (),
         _one(lambda s: s.spec.memory_reservation)),
        ("container_start_time_seconds", g,
         "Start time of the container since unix epoch in seconds.", (),
         lambda s: [((), s.ref.started_at)] if s.ref.started_at else []),
        ("container_last_seen", g, "Last time a container was seen by the exporter", (),
         _one(lambda s: s.timestamp_ns // 1_000_000_000)),
        ("container_restarts_total", c,
         "Number of times the container was restarted (Docker's RestartCount).", (),
         _one(lambda s: s.ref.restart_count)),
    ]  # fmt: skip


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
)  # fmt: skip
# per sink: (name, type, help, health() key)
SINK_METRICS = (
    ("boxwatch_collector_sink_written_total", "counter", "Points the sink delivered.", "written"),
    ("boxwatch_collector_sink_write_errors_total", "counter", "Failed writes of the sink.",
     "write_errors"),
    ("boxwatch_collector_sink_buffered_points", "gauge",
     "Points held by the sink waiting for delivery.", "buffered_points"),
    ("boxwatch_collector_sink_dropped_points_total", "counter",
     "Points dropped because the sink's buffer was full.", "dropped_points"),
)  # fmt: skip


def _fmt(v: float) -> str:
    """A sample value as Go's text format prints it (integers without ".0")."""
    if isinstance(v, int) or v.is_integer():
        return str(int(v))
    return repr(v)


def _esc(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class PrometheusSink(Sink):
    """Holds the latest batch; every scrape builds the families from it."""

    name = "prometheus"

    def __init__(
        self,
        label_whitelist: tuple[str, ...] = (),
        per_cpu: bool = False,
        sys_root: str = "/sys",
        self_metrics: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.whitelist = tuple(label_whitelist)
        self.table = metric_table(DeviceNames(sys_root), per_cpu)
        self.self_metrics = self_metrics  # set by whoever owns the pipeline
        self._samples: list[Sample] = []
        self._label_cache: dict[int, tuple[object, tuple[str, ...]]] = {}

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> PrometheusSink:
        return cls(tuple(getattr(args, "label_whitelist", ()) or ()))

    def write(self, samples: list[Sample]) -> None:
        self._samples = samples

    def health(self) -> dict[str, float]:
        return {}  # pulled, not pushed: nothing to buffer or drop

    # -- labels -------------------------------------------------------------------------

    def _label_names(self, samples: list[Sample]) -> tuple[str, ...]:
        keys: set[str] = set()
        for s in samples:
            keys.update(s.ref.labels)
        names = ["id", "image", "name"]
        seen = set(names)
        for k in sorted(keys):
            sk = sanitize("container_label_" + k)
            if sk not in seen:  # cAdvisor keeps the first of two keys that sanitise alike
                seen.add(sk)
                names.append(sk)
        return tuple(names)

    def _label_values(self, s: Sample, names: tuple[str, ...]) -> tuple[str, ...]:
        ref = s.ref
        cached = self._label_cache.get(id(ref))
        if cached is not None and cached[0] is ref and len(cached[1]) == len(names):
            return cached[1]
        by_name = {sanitize("container_label_" + k): v for k, v in ref.labels.items()}
        values = (ref.cgroup or ref.id, ref.image, ref.name,
                  *(by_name.get(n, "") for n in names[3:]))  # fmt: skip
        self._label_cache[id(ref)] = (ref, values)
        return values

    def _prune_cache(self, samples: list[Sample]) -> None:
        if len(self._label_cache) > 2 * len(samples) + 64:
            live = {id(s.ref) for s in samples}
            self._label_cache = {k: v for k, v in self._label_cache.items() if k in live}

    # -- prometheus_client Collector ------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the latest batch (prometheus_client's collector protocol).
        ``container_memory_failcnt`` is a counter in cAdvisor, but a counter without
        ``_total`` fails ``promtool check metrics`` (and prometheus_client would rename
        it), so it is untyped in both paths; the name stays cAdvisor's."""
        samples = self._samples
        names = self._label_names(samples)
        rows = [(self._label_values(s, names), s) for s in samples]
        for mname, mtype, doc, extra, get in self.table:
            if mtype == "untyped":
                mtype = "unknown"
            fam = Metric(mname[:-6] if mtype == "counter" else mname, doc, mtype)
            label_names = names + extra
            for values, s in rows:
                for extra_values, v in get(s):
                    fam.add_sample(mname, dict(zip(label_names, values + extra_values, strict=True)), v)
            yield fam
        yield from self._collect_self()
        self._prune_cache(samples)

    def _collect_self(self) -> Iterator[Metric]:
        if self.self_metrics is None:
            return
        m = self.self_metrics()
        stats, sinks = m["stats"], m["sinks"]
        for mname, mtype, doc, attr in SELF_METRICS:
            fam = Metric(mname[:-6] if mtype == "counter" else mname, doc, mtype)
            fam.add_sample(mname, {}, float(getattr(stats, attr)))
            yield fam
        for mname, mtype, doc, key in SINK_METRICS:
            fam = Metric(mname[:-6] if mtype == "counter" else mname, doc, mtype)
            for sink, health in sinks.items():
                fam.add_sample(mname, {"sink": sink}, float(health.get(key, 0.0)))
            yield fam

    # -- direct text exposition ---------------------------------------------------------

    def render(self) -> bytes:
        """The text format (0.0.4) of the same families, written directly."""
        samples = self._samples
        names = self._label_names(samples)
        out: list[str] = []
        emit = out.append
        prefixes = []
        for s in samples:
            values = self._label_values(s, names)
            prefixes.append((",".join(f'{n}="{_esc(v)}"' for n, v in zip(names, values, strict=True)), s))
        for mname, mtype, doc, extra, get in self.table:
            emit(f"# HELP {mname} {doc}\n# TYPE {mname} {mtype}\n")
            if extra:
                for prefix, s in prefixes:
                    for extra_values, v in get(s):
                        tail = ",".join(f'{n}="{_esc(x)}"' for n, x in zip(extra, extra_values, strict=True))
                        emit(f"{mname}{{{prefix},{tail}}} {_fmt(v)}\n")
            else:
                for prefix, s in prefixes:
                    for _, v in get(s):
                        emit(f"{mname}{{{prefix}}} {_fmt(v)}\n")
        for fam in self._collect_self():
            mname = fam.name + ("_total" if fam.type == "counter" else "")
            emit(f"# HELP {mname} {fam.documentation}\n# TYPE {mname} {fam.type}\n")
            for smp in fam.samples:
                labels = ",".join(f'{k}="{_esc(v)}"' for k, v in smp.labels.items())
                emit(f"{smp.name}{{{labels}}} {_fmt(smp.value)}\n" if labels
                     else f"{smp.name} {_fmt(smp.value)}\n")  # fmt: skip
        self._prune_cache(samples)
        return "".join(out).encode()

