"""Prometheus: the latest samples as cAdvisor's metric families, built fresh per scrape.

Names, types, help strings and labels follow cAdvisor (``lib/metrics/prometheus.go``) so
existing dashboards and alert rules work: every series carries ``id`` (the cgroup path),
``name``, ``image`` and ``container_label_<key>`` for whitelisted labels, the union over
all containers (empty where a container lacks one), as cAdvisor does. Unlimited limits
are 0.

One table (``metric_table``) decides which series exist and their values; two
serialisers read it: ``collect()`` (prometheus_client's custom-collector interface) and
``render()``, which writes the text format directly and is what ``/metrics`` serves. It
is byte-for-byte what ``generate_latest`` makes of ``collect()`` (a test proves it) at a
fraction of the cost: each container's label text is built once per ref and layout, and
values are formatted with prometheus_client's own ``floatToGoString`` through a cache.
"""

from __future__ import annotations

import re
from argparse import Namespace
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any, NamedTuple

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from collector.model import ContainerRef, Sample
from collector.sinks.base import Sink

NS = 1e-9
US = 1e-6
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
FORMAT_CACHE_MAX = 8192  # formatted values kept (zeros, limits: ~1 MB; cleared past this)

Values = list[tuple[tuple[str, ...], float]]  # (extra label values, value)


class Family(NamedTuple):
    """One metric family. With no ``extra`` labels, ``get`` returns the container's one
    value or None (no series); with extra labels it returns ``Values``."""

    name: str
    type: str  # counter / gauge / untyped
    help: str
    extra: tuple[str, ...]
    get: Callable[[Sample], Any]


def sanitize(name: str) -> str:
    """cAdvisor's sanitizeLabelName: anything but [a-zA-Z0-9_] becomes "_"."""
    return _INVALID.sub("_", name)


def escape_value(v: str) -> str:
    """A label value as the text format (and prometheus_client) escapes it."""
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


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
        ("container_oom_events_total", c, "Count of out of memory events observed for the container",
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
    ]  # fmt: skip
    return [Family(*row) for row in rows]


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


class _Labels:
    """One container's label values under one set of label names, and its label texts
    (``{...}``) per extra-label layout and values, built on first use and kept while the
    ref is the same. Labels are in sorted name order, as generate_latest sorts them."""

    __slots__ = ("ref", "names", "values", "base", "texts")

    def __init__(self, ref: ContainerRef, names: tuple[str, ...]) -> None:
        self.ref = ref
        self.names = names
        by_name = {sanitize("container_label_" + k): v for k, v in ref.labels.items()}
        self.values = dict(zip(names, (ref.cgroup or ref.id, ref.image, ref.name,
                                       *(by_name.get(n, "") for n in names[3:])), strict=True))  # fmt: skip
        self.base = self.text((), ())
        self.texts: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}

    def text(self, extra: tuple[str, ...], xs: tuple[str, ...]) -> str:
        labels = {**self.values, **dict(zip(extra, xs, strict=True))}
        return "{" + ",".join(f'{k}="{escape_value(labels[k])}"' for k in sorted(labels)) + "}"

    def add(self, extra: tuple[str, ...], xs: tuple[str, ...]) -> str:
        """The label text of one extra-label layout and values, kept for next time."""
        texts = self.texts.get(extra)
        if texts is None:
            texts = self.texts[extra] = {}
        elif len(texts) > 64:  # devices and interfaces come and go: stay bounded
            texts.clear()
        text = texts[xs] = self.text(extra, xs)
        return text


def _render_family(fam: Family, rows: list[tuple[_Labels, Sample]], fmt: Callable[[Any], str],
                   cache: dict[Any, str], out: list[str]) -> None:  # fmt: skip
    mname, extra, get = fam.name, fam.extra, fam.get
    if not extra:
        out.extend([f"{mname}{labels.base} {cache.get(v) or fmt(v)}\n"
                    for labels, v in [(labels, get(s)) for labels, s in rows] if v is not None])  # fmt: skip
        return
    append = out.append
    for labels, s in rows:
        values = get(s)
        if values:
            texts = labels.texts.get(extra) or {}
            for xs, v in values:
                append(f"{mname}{texts.get(xs) or labels.add(extra, xs)} {cache.get(v) or fmt(v)}\n")


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
        self._labels: dict[str, _Labels] = {}  # container id -> its label texts
        self._formatted: dict[float, str] = {}

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
            if s.ref.labels:
                keys.update(s.ref.labels)
        names = ["id", "image", "name"]
        seen = set(names)
        for k in sorted(keys):
            sk = sanitize("container_label_" + k)
            if sk not in seen:  # cAdvisor keeps the first of two keys that sanitise alike
                seen.add(sk)
                names.append(sk)
        return tuple(names)

    def _rows(self, samples: list[Sample]) -> list[tuple[_Labels, Sample]]:
        """Each sample with its container's labels (rebuilt when the ref or the label
        names change; entries of containers that are gone are dropped)."""
        names = self._label_names(samples)
        cache, fresh = self._labels, {}
        rows = []
        for s in samples:
            ref = s.ref
            labels = cache.get(ref.id)
            if labels is None or labels.names != names or (labels.ref is not ref and labels.ref != ref):
                labels = _Labels(ref, names)
            fresh[ref.id] = labels
            rows.append((labels, s))
        self._labels = fresh
        return rows

    def _fmt(self, v: float) -> str:
        """``floatToGoString(v)``, cached: limits, zeros and idle counters repeat."""
        text = self._formatted.get(v)
        if text is None:
            if len(self._formatted) >= FORMAT_CACHE_MAX:
                self._formatted.clear()
            text = self._formatted[v] = floatToGoString(v)
        return text

    # -- prometheus_client Collector ------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the latest batch (prometheus_client's collector protocol).
        ``container_memory_failcnt`` is a counter in cAdvisor, but a counter without
        ``_total`` fails ``promtool check metrics`` (and prometheus_client would rename
        it), so it is untyped in both paths; the name stays cAdvisor's."""
        rows = self._rows(self._samples)
        for mname, mtype, doc, extra, get in self.table:
            fam = Metric(mname[:-6] if mtype == "counter" else mname, doc,
                         "unknown" if mtype == "untyped" else mtype)  # fmt: skip
            for labels, s in rows:
                if not extra:
                    v = get(s)
                    if v is not None:
                        fam.add_sample(mname, dict(labels.values), v)
                    continue
                for xs, v in get(s):
                    fam.add_sample(mname, {**labels.values, **dict(zip(extra, xs, strict=True))}, v)
            yield fam
        yield from self._collect_self()

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
        """The text format (0.0.4) of ``collect()``'s families, byte-for-byte what
        prometheus_client's ``generate_latest`` writes for them."""
        rows = self._rows(self._samples)
        out: list[str] = []
        emit = out.append
        fmt, cache = self._fmt, self._formatted
        for fam in self.table:
            emit(f"# HELP {fam.name} {fam.help}\n# TYPE {fam.name} {fam.type}\n")
            _render_family(fam, rows, fmt, cache, out)
        for fam in self._collect_self():
            mname = fam.name + ("_total" if fam.type == "counter" else "")
            emit(f"# HELP {mname} {fam.documentation}\n# TYPE {mname} {fam.type}\n")
            for smp in fam.samples:
                labels = ",".join(f'{k}="{escape_value(v)}"' for k, v in sorted(smp.labels.items()))
                emit(f"{smp.name}{{{labels}}} {floatToGoString(smp.value)}\n" if labels
                     else f"{smp.name} {floatToGoString(smp.value)}\n")  # fmt: skip
        return "".join(out).encode()
