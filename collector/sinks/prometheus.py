"""Prometheus: the latest samples as cAdvisor's metric families, built fresh per scrape.

Names, types, help strings and labels follow cAdvisor (``lib/metrics/prometheus.go``) so
existing dashboards and alert rules work: every series carries ``id`` (the cgroup path),
``name``, ``image`` and ``container_label_<key>`` for whitelisted labels, the union over
all containers (empty where a container lacks one), as cAdvisor does. Unlimited limits
are 0.

One table (``metric_table``, in ``collector.metrics``) decides which series exist
and their values; two serialisers read it: ``collect()`` (prometheus_client's
custom-collector interface) and ``render()``, which writes the text format directly and is
what ``/metrics`` serves. It is byte-for-byte what ``generate_latest`` makes of
``collect()`` (a test proves it) at a fraction of the cost: each container's label text
is built once per ref and layout, and values are formatted with prometheus_client's own
``floatToGoString`` through a cache.
"""

from __future__ import annotations

import re
from argparse import Namespace
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from cgroupstats.model import ContainerRef, Sample
from collector.metrics import (
    DEFAULT,
    PAUSED_FAMILY,
    SELF_METRICS,
    SINK_METRICS,
    STATE_FAMILY,
    DeviceNames,
    Family,
    active,
    batch_flags,
    metric_table,
)
from collector.metrics.machine import BASE, Machine
from collector.sinks.base import Sink

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
FORMAT_CACHE_MAX = 8192  # formatted values kept (zeros, limits: ~1 MB; cleared past this)


def sanitize(name: str) -> str:
    """cAdvisor's sanitizeLabelName: anything but [a-zA-Z0-9_] becomes "_"."""
    return _INVALID.sub("_", name)


def escape_value(v: str) -> str:
    """A label value as the text format (and prometheus_client) escapes it."""
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _Labels:
    """One container's label values under one set of label names, and its label texts
    (``{...}``) per extra-label layout and values, built on first use and kept while the
    ref is the same. Labels are in sorted name order, as generate_latest sorts them."""

    __slots__ = ("ref", "names", "values", "base", "texts")

    def __init__(self, ref: ContainerRef, names: tuple[str, ...]) -> None:
        self.ref = ref
        self.names = names
        by_name = {sanitize("container_label_" + k): v for k, v in ref.labels.items()}
        by_name.update(container=ref.container, namespace=ref.namespace, pod=ref.pod)
        self.values = dict(zip(names, (ref.cgroup or ref.id, ref.image, ref.name,
                                       *(by_name.get(n, "") for n in names[3:])), strict=True))
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


def _render_family(fam: Family, rows: Sequence[tuple[_Labels, Any]], fmt: Callable[[Any], str],
                   cache: dict[Any, str], out: list[str]) -> None:
    mname, extra, get = fam.name, fam.extra, fam.get
    if not extra:
        out.extend([f"{mname}{labels.base} {cache.get(v) or fmt(v)}\n"
                    for labels, v in [(labels, get(s)) for labels, s in rows] if v is not None])
        return
    append = out.append
    for labels, s in rows:
        values = get(s)
        if values:
            texts = labels.texts.get(extra) or {}
            for xs, v in values:
                append(
                    f"{mname}{texts.get(xs) or labels.add(extra, xs)} {cache.get(v) or fmt(v)}\n"
                )


class PrometheusSink(Sink):
    """Holds the latest batch; every scrape builds the families from it."""

    name = "prometheus"

    def __init__(
        self,
        label_whitelist: tuple[str, ...] = (),
        per_cpu: bool | None = None,
        sys_root: str = "/sys",
        self_metrics: Callable[[], dict[str, Any]] | None = None,
        categories: Collection[str] = DEFAULT,
    ) -> None:
        """``categories``: cAdvisor's metric categories to export (``collector.metrics.
        categories.included``); ``per_cpu`` None follows whether ``percpu`` is one."""
        self.whitelist = tuple(label_whitelist)
        self.table = metric_table(DeviceNames(sys_root), categories, per_cpu)
        # cAdvisor's cpu_topology: machine_* families (collector.metrics.machine)
        self.machine = Machine(sys_root) if "cpu_topology" in categories else None
        self.self_metrics = self_metrics  # set by whoever owns the pipeline
        # (samples, refs whose state says running) of one interval, swapped as one, so a
        # scrape never pairs this interval's samples with another's running set (a
        # container just gone or just started would look "running but silent")
        self._batch: tuple[list[Sample], list[ContainerRef]] = ([], [])
        self._staged: list[ContainerRef] = []
        self._labels: dict[str, _Labels] = {}  # container id -> its label texts
        self._formatted: dict[float, str] = {}

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> PrometheusSink:
        return cls(tuple(getattr(args, "label_whitelist", ()) or ()))

    def write(self, samples: list[Sample]) -> None:
        self._batch = (samples, self._staged)

    def write_states(self, refs: list[ContainerRef], time_ns: int) -> None:
        """Staged: published with the next ``write`` (the pipeline calls this first)."""
        self._staged = refs

    def health(self) -> dict[str, float]:
        return {}  # pulled, not pushed: nothing to buffer or drop

    # -- labels -------------------------------------------------------------------------

    def _label_names(self, refs: list[ContainerRef]) -> tuple[str, ...]:
        keys: set[str] = set()
        kube = False
        for ref in refs:
            if ref.labels:
                keys.update(ref.labels)
            kube = kube or bool(ref.pod)
        names = ["id", "image", "name"]
        if kube:  # the kubelet's /metrics/cadvisor labels, once a pod container is seen
            names += ["container", "namespace", "pod"]
        seen = set(names)
        for k in sorted(keys):
            sk = sanitize("container_label_" + k)
            if sk not in seen:  # cAdvisor keeps the first of two keys that sanitise alike
                seen.add(sk)
                names.append(sk)
        return tuple(names)

    def _rows(self) -> tuple[list[tuple[_Labels, Sample]], list[tuple[_Labels, ContainerRef]]]:
        """Each sample, and each running container's ref, with its container's labels
        (rebuilt when the ref or the label names change; entries of containers that are
        gone are dropped). The label names are the union over both, so the marker and the
        samples of one container carry the same label set."""
        samples, states = self._batch
        names = self._label_names([s.ref for s in samples] + states)
        cache, fresh = self._labels, {}

        def labels_of(ref: ContainerRef) -> _Labels:
            labels = fresh.get(ref.id) or cache.get(ref.id)
            if (
                labels is None
                or labels.names != names
                or (labels.ref is not ref and labels.ref != ref)
            ):
                labels = _Labels(ref, names)
            fresh[ref.id] = labels
            return labels

        rows = [(labels_of(s.ref), s) for s in samples]
        state_rows = [(labels_of(ref), ref) for ref in states]
        self._labels = fresh
        return rows, state_rows

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
        A cAdvisor counter whose name lacks ``_total`` (``container_memory_failcnt``,
        ``container_hugetlb_failcnt``) cannot be written by prometheus_client as a
        counter (it would add ``_total`` to its HELP and TYPE lines), so this path types
        it unknown; ``render()``, which ``/metrics`` serves, keeps cAdvisor's counter."""
        rows, state_rows = self._rows()
        on = active(self.table, batch_flags(s for _, s in rows))
        for (mname, mtype, doc, extra, get), live in zip(self.table, on, strict=True):
            if mtype == "counter" and not mname.endswith("_total"):
                mtype = "unknown"
            fam = Metric(mname[:-6] if mtype == "counter" else mname, doc, mtype)
            for labels, s in rows if live else ():
                if not extra:
                    v = get(s)
                    if v is not None:
                        fam.add_sample(mname, dict(labels.values), v)
                    continue
                for xs, v in get(s):
                    fam.add_sample(mname, {**labels.values, **dict(zip(extra, xs, strict=True))}, v)
            yield fam
        for st in (STATE_FAMILY, PAUSED_FAMILY):
            fam = Metric(st.name, st.help, st.type)
            for labels, ref in state_rows:
                fam.add_sample(st.name, dict(labels.values), st.get(ref))
            yield fam
        yield from self._collect_machine()
        yield from self._collect_self()

    def _collect_machine(self) -> Iterator[Metric]:
        if self.machine is None:
            return
        base = dict(zip(BASE, self.machine.base, strict=True))
        for mname, doc, extra, series in self.machine.series():
            fam = Metric(mname, doc, "gauge")
            for xs, v in series:
                fam.add_sample(mname, {**base, **dict(zip(extra, xs, strict=True))}, v)
            yield fam

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
        rows, state_rows = self._rows()
        out: list[str] = []
        emit = out.append
        fmt, cache = self._fmt, self._formatted
        on = active(self.table, batch_flags(s for _, s in rows))
        for fam, live in zip(self.table, on, strict=True):
            emit(f"# HELP {fam.name} {fam.help}\n# TYPE {fam.name} {fam.type}\n")
            if live:
                _render_family(fam, rows, fmt, cache, out)
        for st in (STATE_FAMILY, PAUSED_FAMILY):
            emit(f"# HELP {st.name} {st.help}\n# TYPE {st.name} {st.type}\n")
            _render_family(st, state_rows, fmt, cache, out)
        for fam in (*self._collect_machine(), *self._collect_self()):
            mname = fam.name + ("_total" if fam.type == "counter" else "")
            emit(f"# HELP {mname} {fam.documentation}\n# TYPE {mname} {fam.type}\n")
            for smp in fam.samples:
                labels = ",".join(f'{k}="{escape_value(v)}"' for k, v in sorted(smp.labels.items()))
                emit(f"{smp.name}{{{labels}}} {floatToGoString(smp.value)}\n" if labels
                     else f"{smp.name} {floatToGoString(smp.value)}\n")
        return "".join(out).encode()
