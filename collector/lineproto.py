"""Samples and events as InfluxDB line protocol: the one encoder every Influx sink uses.

Measurements are multi-field, one line per container (per device / interface / PSI
resource) and sample:

=================  ==================  ==============================================
measurement        extra tags          fields
=================  ==================  ==============================================
container_cpu                          usage_total usage_user usage_system (ns),
                                       periods throttled_periods throttled_time (ns)
                                       burst_periods burst_time (ns)
container_mem                          usage working_set rss cache mapped_file swap
                                       failcnt pgfault pgmajfault max_usage limit
                                       oom_kill kernel active_file inactive_file
                                       file_dirty file_writeback pgscan pgsteal
                                       workingset_refault_anon workingset_refault_file
                                       (bytes / counts)
container_blkio    device (maj:min)    read_bytes write_bytes reads writes, <op>_bytes
                                       per operation (sync async discard total...),
                                       and where the kernel writes them reads_merged
                                       writes_merged read_time write_time io_time (ns)
                                       io_current, io_cost_usage/wait/indebt/indelay (us)
container_net      interface           rx_/tx_ bytes packets errors dropped
container_pids                         current max
container_spec                         memory_limit swap_limit reservation cpu_quota
                                       cpu_period (us) cpu_shares pids_max, cpuset_cpus
                                       cpuset_mems (strings), health_state (1 healthy,
                                       0 starting/unhealthy, -1 no healthcheck), created
                                       (epoch s, float)
container_fs       device             usage (the writable layer, bytes: moby's SizeRw),
                                       limit (its filesystem's capacity, bytes),
                                       inodes_free inodes_total
container_psi      resource            some_/full_ avg10 avg60 avg300 (float %),
                                       some_/full_ total (us)
container_events   action              exit_code, message
container_state                        running (1i while the state file says running,
                                       sampled or not)
=================  ==================  ==============================================

cAdvisor's opt-in categories add (``collector.lineproto_extra``): container_tasks
(cpuLoad), container_process (process), container_tcp / container_udp (tcp, udp; tag
``family``), container_hugetlb (hugetlb; tag ``pagesize``), container_numa
(memory_numa; tags ``node``, ``scope``), container_cpuset (cpuset). A measurement of a
category that is off is not written (cpu, memory, diskIO, network, disk, pressure).

Every line carries ``host``, ``container_name``, ``container_id``, ``image`` and
``label_<key>`` for whitelisted labels (and a pod container's ``pod``, ``namespace`` and
``container``); an empty tag is left out (InfluxDB rejects it).
Counters are integers (``i`` suffix) in the model's units, so CPU time is nanoseconds,
exact: divide by 1e9 for cAdvisor's ``container_cpu_usage_seconds_total``. Unlimited
limits are 0. Timestamps are nanoseconds (write with ``precision=ns``).

Escaping and ``line`` are the bottom layer's (``formats.lineproto``), shared with the
shipper.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Mapping

from cgroupstats.extras import GROUPS as EXTRA_GROUPS
from cgroupstats.model import (
    ContainerRef,
    CpuStats,
    IoStats,
    MemoryStats,
    NetStats,
    Psi,
    Sample,
    Spec,
)
from collector.lineproto_extra import extra_lines
from collector.metrics.categories import DEFAULT
from formats.lineproto import (
    escape_string,
    line,
    tag_set,
)

HEALTH = {"healthy": 1, "": -1}  # cAdvisor's container_health_state: else 0
MAX_CACHED_REFS = 8192  # tag strings kept; cleared wholesale past this (container churn)


def ref_tags(ref: ContainerRef, host: str) -> list[tuple[str, str]]:
    """The tags every line of a container carries."""
    tags = [
        ("host", host),
        ("container_name", ref.name),
        ("container_id", ref.id),
        ("image", ref.image),
    ]
    tags.extend((f"label_{k}", v) for k, v in ref.labels.items())
    if ref.pod:  # a pod container's Kubernetes names (collector.kubenames)
        tags += [("pod", ref.pod), ("namespace", ref.namespace), ("container", ref.container)]
    return tags


def _psi_fields(psi: Psi) -> dict[str, object]:
    return {
        "some_avg10": psi.some.avg10,
        "some_avg60": psi.some.avg60,
        "some_avg300": psi.some.avg300,
        "some_total": psi.some.total_us,
        "full_avg10": psi.full.avg10,
        "full_avg60": psi.full.avg60,
        "full_avg300": psi.full.avg300,
        "full_total": psi.full.total_us,
    }


class _Tags:
    """One container's tag strings: the base set, and the base plus one extra tag
    (device, interface, resource, action), built once each. Also its last lines without
    their timestamp, each with the object it was made from: readers hand out the same
    object while a value has not changed (samples are never changed once made), so an
    idle container's lines are only stamped again."""

    __slots__ = ("base", "extra", "pairs", "ref", "made")

    def __init__(self, ref: ContainerRef, host: str) -> None:
        self.ref = ref
        self.pairs = ref_tags(ref, host)
        self.base = tag_set(self.pairs)
        self.extra: dict[tuple[str, str], str] = {}
        # measurement -> (the object(s) the line was made from, the line without time)
        self.made: dict[str, tuple[object, object, str | list[str]]] = {}

    def with_tag(self, key: str, value: str) -> str:
        text = self.extra.get((key, value))
        if text is None:
            if len(self.extra) >= 256:  # devices/interfaces come and go: stay bounded
                self.extra.clear()
            text = self.extra[key, value] = tag_set([*self.pairs, (key, value)])
        return text


def _cpu_line(tags: str, cpu: CpuStats) -> str:
    return (f"container_cpu{tags} usage_total={cpu.usage_ns}i,usage_user={cpu.user_ns}i,"
            f"usage_system={cpu.system_ns}i,periods={cpu.nr_periods}i,"
            f"throttled_periods={cpu.nr_throttled}i,throttled_time={cpu.throttled_ns}i,"
            f"burst_periods={cpu.nr_bursts}i,burst_time={cpu.burst_ns}i")


def _mem_line(tags: str, mem: MemoryStats, spec: Spec) -> str:
    return (f"container_mem{tags} usage={mem.usage}i,working_set={mem.working_set}i,"
            f"rss={mem.rss}i,cache={mem.cache}i,mapped_file={mem.mapped_file}i,"
            f"swap={mem.swap}i,failcnt={mem.failcnt}i,pgfault={mem.pgfault}i,"
            f"pgmajfault={mem.pgmajfault}i,max_usage={mem.max_usage}i,"
            f"limit={spec.memory_limit}i,oom_kill={mem.events_oom_kill}i,"
            f"kernel={mem.kernel}i,active_file={mem.active_file}i,"
            f"inactive_file={mem.inactive_file}i,file_dirty={mem.file_dirty}i,"
            f"file_writeback={mem.file_writeback}i,pgscan={mem.pgscan}i,"
            f"pgsteal={mem.pgsteal}i,workingset_refault_anon={mem.refault_anon}i,"
            f"workingset_refault_file={mem.refault_file}i")


def _spec_line(tags: str, spec: Spec, ref: ContainerRef) -> str:
    return (f"container_spec{tags} memory_limit={spec.memory_limit}i,"
            f"swap_limit={spec.swap_limit}i,reservation={spec.memory_reservation}i,"
            f"cpu_quota={spec.cpu_quota_us}i,cpu_period={spec.cpu_period_us}i,"
            f"cpu_shares={spec.cpu_shares}i,pids_max={spec.pids_max}i,"
            f'cpuset_cpus="{escape_string(spec.cpuset_cpus)}",'
            f'cpuset_mems="{escape_string(spec.cpuset_mems)}",'
            f"health_state={HEALTH.get(ref.health, 0)}i,created={float(ref.created_at)}")


def _io_extra(io: IoStats) -> str:
    """The per-operation bytes and the optional groups the kernel wrote."""
    parts = [f",{op.lower()}_bytes={v}i" for op, v in io.by_op.items()
             if op not in ("Read", "Write")]
    has = io.has
    if "merged" in has:
        parts.append(f",reads_merged={io.read_merged}i,writes_merged={io.write_merged}i")
    if "time" in has:
        parts.append(f",read_time={io.read_time_ns}i,write_time={io.write_time_ns}i,"
                     f"io_time={io.time_ns}i")
    if "queued" in has:
        parts.append(f",io_current={io.queued}i")
    if "cost" in has:
        parts.append(f",io_cost_usage={io.cost_usage_us}i,io_cost_wait={io.cost_wait_us}i,"
                     f"io_cost_indebt={io.cost_indebt_us}i,"
                     f"io_cost_indelay={io.cost_indelay_us}i")
    return "".join(parts)


def _blkio_lines(c: _Tags, blkio: Mapping[str, IoStats]) -> list[str]:
    return [f"container_blkio{c.with_tag('device', device)} "
            f"read_bytes={io.read_bytes}i,write_bytes={io.write_bytes}i,"
            f"reads={io.read_ops}i,writes={io.write_ops}i{_io_extra(io)}"
            for device, io in blkio.items()]


def _net_lines(c: _Tags, network: Mapping[str, NetStats]) -> list[str]:
    return [f"container_net{c.with_tag('interface', iface)} "
            f"rx_bytes={net.rx_bytes}i,rx_packets={net.rx_packets}i,"
            f"rx_errors={net.rx_errors}i,rx_dropped={net.rx_dropped}i,"
            f"tx_bytes={net.tx_bytes}i,tx_packets={net.tx_packets}i,"
            f"tx_errors={net.tx_errors}i,tx_dropped={net.tx_dropped}i"
            for iface, net in network.items()]


class Encoder:
    """Turns samples and events into lines; caches each container's tag string, since
    tags change only when discovery hands out a new ref."""

    def __init__(self, host: str | None = None,
                 categories: Collection[str] | None = None) -> None:
        self.host = host if host is not None else socket.gethostname()
        self._tags: dict[str, _Tags] = {}
        cats = DEFAULT if categories is None else frozenset(categories)
        self.cats = cats
        self._on = {m: cat in cats for m, cat in (
            ("cpu", "cpu"), ("mem", "memory"), ("blkio", "diskIO"), ("net", "network"),
            ("fs", "disk"), ("psi", "pressure"))}
        self._extra = bool(cats & EXTRA_GROUPS)

    def _ref_tags(self, ref: ContainerRef) -> _Tags:
        cached = self._tags.get(ref.id)
        if cached is None or (cached.ref is not ref and cached.ref != ref):
            if len(self._tags) >= MAX_CACHED_REFS:
                self._tags.clear()
            cached = self._tags[ref.id] = _Tags(ref, self.host)
        return cached

    def sample(self, s: Sample) -> list[str]:
        """Every line of one sample."""
        c = self._ref_tags(s.ref)
        tags, made = c.base, c.made
        t = s.timestamp_ns
        cpu, mem, spec, pids, blkio, network = s.cpu, s.memory, s.spec, s.pids, s.blkio, s.network
        on = self._on
        out: list[str] = []
        if on["cpu"]:
            m = made.get("cpu")
            if m is None or m[0] is not cpu:
                m = made["cpu"] = (cpu, None, _cpu_line(tags, cpu))
            out.append(f"{m[2]} {t}")
        if on["mem"]:
            m = made.get("mem")
            if m is None or m[0] is not mem or m[1] is not spec:
                m = made["mem"] = (mem, spec, _mem_line(tags, mem, spec))
            out.append(f"{m[2]} {t}")
        m = made.get("pids")
        if m is None or m[0] is not pids:
            m = made["pids"] = (pids, None, f"container_pids{tags} "
                                            f"current={pids.current}i,max={pids.max}i")
        out.append(f"{m[2]} {t}")
        m = made.get("spec")
        if m is None or m[0] is not spec or m[1] is not s.ref:
            m = made["spec"] = (spec, s.ref, _spec_line(tags, spec, s.ref))
        out.append(f"{m[2]} {t}")
        if blkio and on["blkio"]:
            m = made.get("blkio")
            if m is None or m[0] is not blkio:
                m = made["blkio"] = (blkio, None, _blkio_lines(c, blkio))
            out.extend([f"{x} {t}" for x in m[2]])
        if network and on["net"]:
            m = made.get("net")
            if m is None or m[0] is not network:
                m = made["net"] = (network, None, _net_lines(c, network))
            out.extend([f"{x} {t}" for x in m[2]])
        layer = s.writable_layer
        if layer is not None and on["fs"]:
            m = made.get("fs")
            if m is None or m[0] is not layer:
                m = made["fs"] = (layer, None, f"container_fs{c.with_tag('device', layer.device)} "
                                               f"usage={layer.usage}i,limit={layer.limit}i,"
                                               f"inodes_free={layer.inodes_free}i,"
                                               f"inodes_total={layer.inodes_total}i")
            out.append(f"{m[2]} {t}")
        psi = s.psi
        if on["psi"]:
            for resource, p in (("cpu", psi.cpu), ("memory", psi.memory), ("io", psi.io)):
                if p is not None:
                    text = line("container_psi", c.with_tag("resource", resource),
                                _psi_fields(p), t)
                    if text is not None:
                        out.append(text)
        ex = s.extra
        if self._extra and ex is not None:
            m = made.get("extra")
            if m is None or m[0] is not ex or m[1] is not pids:
                m = made["extra"] = (ex, pids, extra_lines(tags, c.with_tag, ex, pids))
            out.extend([f"{x} {t}" for x in m[2]])
        return out

    def state(self, ref: ContainerRef, time_ns: int) -> str:
        """One ``container_state`` line (``running=1i``, and ``paused=1i`` while frozen):
        the container's state file says it runs, written whether or not it could be
        sampled, so "running but silent" is a query over data rather than a guess."""
        paused = ",paused=1i" if ref.paused else ""
        return f"container_state{self._ref_tags(ref).base} running=1i{paused} {time_ns}"

    def event(
        self, time_ns: int, ref: ContainerRef, action: str, exit_code: int | None = None
    ) -> str:
        """One ``container_events`` line; ``exit_code`` is -1 when unknown."""
        c = self._ref_tags(ref)
        who = ref.name or ref.id[:12]
        message = f"container {who} {action}"
        if exit_code is not None:
            message += f" (exit code {exit_code})"
        text = line(
            "container_events",
            c.with_tag("action", action),
            {"exit_code": -1 if exit_code is None else exit_code, "message": message},
            time_ns,
        )
        assert text is not None  # both fields are always representable
        return text
