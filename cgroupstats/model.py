"""What the collector knows about a container and what one sample of it holds.

Both cgroup versions fill the same ``Sample`` so sinks never ask which one ran. Units are
fixed here once: time in nanoseconds, sizes in bytes, counters as the kernel counts them.
Unlimited limits are 0, as cAdvisor reports them, never 2^63 or "max".

The per-sample classes are slotted dataclasses built once per container and interval and
never changed afterwards; they are not ``frozen`` because a frozen dataclass's
``__init__`` sets each field through ``object.__setattr__`` (MemoryStats: 1.4 us against
0.2 us), which is most of what building a sample costs. They stay hashable
(``unsafe_hash``) and work with ``dataclasses.asdict``/``replace``. ``ContainerRef`` is
made once per discovery change, so it stays frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["box", "docker", "cgroup"]


@dataclass(frozen=True, slots=True)
class ContainerRef:  # frozen: shared by readers, sinks and caches keyed on it
    """One container found by discovery; the reader needs only its cgroup paths and pid.

    ``cgroup_paths`` maps a v1 controller name (``cpu``, ``cpuacct``, ``cpuset``,
    ``memory``, ``blkio``, ``pids``, and ``unified`` on hybrid hosts) to its absolute
    directory; on v2 it holds the one directory under the key ``unified``.
    """

    id: str  # 64-hex container id, or the cgroup path for raw groups
    name: str  # "web" (Docker's "/web" without the slash); "" when unknown
    image: str
    cgroup: str  # path inside the hierarchy, e.g. "/box/<id>": cAdvisor's `id` label
    cgroup_version: int  # 1 or 2
    cgroup_paths: Mapping[str, str] = field(hash=False)
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)  # whitelisted only
    pid: int = 0  # init pid on the host, 0 when unknown
    state_file: str = ""  # config.v2.json, "" for raw cgroups
    state_mtime_ns: int = 0
    started_at: float = 0.0  # epoch seconds, 0 when unknown
    restart_count: int = 0
    source: Source = "cgroup"
    created_at: float = 0.0  # epoch seconds of ``Created``, 0 when unknown
    # State.Health.Status: "starting", "healthy", "unhealthy"; "" without a healthcheck
    health: str = ""
    # Kubernetes names of a pod container (the kubelet's labels), "" elsewhere
    pod: str = ""
    namespace: str = ""
    container: str = ""
    paused: bool = False  # State.Paused: frozen (docker pause), still running

    @property
    def unified_path(self) -> str:
        """The v2 directory (the whole group on v2, the PSI side on hybrid v1), or ""."""
        return self.cgroup_paths.get("unified", "")


@dataclass(slots=True, unsafe_hash=True)
class CpuStats:
    usage_ns: int = 0
    user_ns: int = 0
    system_ns: int = 0
    per_cpu_ns: tuple[int, ...] = ()  # v1 only
    nr_periods: int = 0
    nr_throttled: int = 0
    throttled_ns: int = 0
    nr_bursts: int = 0  # v2 cpu.stat (cpu.max.burst), 0 elsewhere
    burst_ns: int = 0


@dataclass(slots=True, unsafe_hash=True)
class MemoryStats:
    usage: int = 0
    working_set: int = 0  # usage - inactive_file, floored at 0 (cAdvisor)
    rss: int = 0  # v1 total_rss, v2 anon
    cache: int = 0  # v1 total_cache, v2 file
    mapped_file: int = 0
    swap: int = 0
    failcnt: int = 0  # v1 memory.failcnt, v2 memory.events "max"
    pgfault: int = 0
    pgmajfault: int = 0
    max_usage: int = 0  # v1 max_usage_in_bytes, v2 memory.peak when the kernel has it
    events_high: int = 0  # v2 only
    events_max: int = 0  # v2 only
    events_oom: int = 0  # v2 only
    events_oom_kill: int = 0  # v1 memory.oom_control oom_kill, v2 memory.events
    # memory.stat (v1 total_*, v2 flat): kernel = v2 "kernel" (v1: kmem usage when read)
    kernel: int = 0
    active_file: int = 0
    inactive_file: int = 0
    file_dirty: int = 0  # v1 total_dirty, v2 file_dirty
    file_writeback: int = 0  # v1 total_writeback, v2 file_writeback
    pgscan: int = 0  # v2 only
    pgsteal: int = 0  # v2 only
    refault_anon: int = 0  # v2 workingset_refault_anon (5.9+)
    refault_file: int = 0  # v2 workingset_refault_file (5.9+)


@dataclass(slots=True, unsafe_hash=True)
class IoStats:
    """One block device, keyed by "major:minor" in ``Sample.blkio``."""

    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0
    # Beyond bytes/ops, where the kernel writes them (cAdvisor's DiskIo names): v1
    # cfq/bfq's io_merged, io_service_time (ns: read, write, total) and io_queued; v2
    # io.cost's cost.* (us). ``has`` names the groups present ("merged", "time",
    # "queued", "cost"), so a counter the kernel lacks is no series rather than a 0.
    read_merged: int = 0
    write_merged: int = 0
    read_time_ns: int = 0
    write_time_ns: int = 0
    time_ns: int = 0
    queued: int = 0
    cost_usage_us: int = 0
    cost_wait_us: int = 0
    cost_indebt_us: int = 0
    cost_indelay_us: int = 0
    has: frozenset[str] = frozenset()
    # io_service_bytes per operation as the kernel names it (v1: Read Write Sync Async
    # Discard Total; v2: Read Write Discard): container_blkio_device_usage_total
    by_op: Mapping[str, int] = field(default_factory=dict, hash=False)


@dataclass(slots=True, unsafe_hash=True)
class NetStats:
    """One interface of the container's network namespace (``lo`` is skipped)."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(slots=True, unsafe_hash=True)
class PidsStats:
    current: int = 0
    max: int = 0  # 0 = unlimited


@dataclass(slots=True, unsafe_hash=True)
class PsiLine:
    avg10: float = 0.0
    avg60: float = 0.0
    avg300: float = 0.0
    total_us: int = 0  # microseconds stalled, as the kernel counts


@dataclass(slots=True, unsafe_hash=True)
class Psi:
    some: PsiLine = PsiLine()
    full: PsiLine = PsiLine()  # the kernel reports "full" for cpu too since 5.13


@dataclass(slots=True, unsafe_hash=True)
class PsiStats:
    cpu: Psi | None = None
    memory: Psi | None = None
    io: Psi | None = None


@dataclass(slots=True, unsafe_hash=True)
class Spec:
    """Limits as configured; 0 means unlimited or not set."""

    memory_limit: int = 0
    swap_limit: int = 0  # v1 memsw (memory+swap), v2 memory.swap.max (swap only)
    memory_reservation: int = 0  # v1 soft_limit_in_bytes, v2 memory.low
    cpu_quota_us: int = 0
    cpu_period_us: int = 0
    cpu_shares: int = 0  # v2 cpu.weight converted back to shares
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_max: int = 0


@dataclass(slots=True, unsafe_hash=True)
class LayerUsage:
    """The container's writable layer (``formats.layers``: moby's SizeRw), walked in the
    background at a slow cadence, and the filesystem holding it."""

    device: str  # that filesystem's source ("/dev/vda"), cAdvisor's ``device`` label
    usage: int  # bytes: the layer's size as ``docker ps -s`` counts it
    limit: int  # bytes: the filesystem's capacity
    inodes_free: int = 0  # that filesystem's free inodes (statvfs f_favail)
    inodes_total: int = 0  # and all of them (f_files)


@dataclass(slots=True, unsafe_hash=True)
class TaskStats:
    """Tasks of the group by state (cgroupstats netlink on v1; /proc on v2, no iowait),
    and cAdvisor's 10 s exponentially smoothed load of running / uninterruptible ones."""

    sleeping: int = 0
    running: int = 0
    stopped: int = 0
    uninterruptible: int = 0
    iowait: int = 0
    load: float = 0.0
    load_d: float = 0.0


@dataclass(slots=True, unsafe_hash=True)
class ProcessStats:
    """cAdvisor's ``process`` group: the group's processes, their descriptors."""

    processes: int = 0
    fds: int = 0
    sockets: int = 0
    max_open_files: int = -1  # RLIMIT_NOFILE soft of the init process, -1 unknown


@dataclass(slots=True, unsafe_hash=True)
class Extras:
    """The opt-in groups' values of one sample; a group not asked for stays empty.
    ``hugetlb``: page size ("2MB") -> (usage, max_usage, failcnt); ``numa``: (type,
    scope, node) -> pages; ``tcp``/``tcp6``: state -> sockets; ``udp``/``udp6``: state ->
    count (cAdvisor's listen/dropped/rxqueued/txqueued)."""

    tasks: TaskStats | None = None
    processes: ProcessStats | None = None
    hugetlb: Mapping[str, tuple[int, int, int]] = field(default_factory=dict, hash=False)
    numa: Mapping[tuple[str, str, str], int] = field(default_factory=dict, hash=False)
    tcp: Mapping[str, int] = field(default_factory=dict, hash=False)
    tcp6: Mapping[str, int] = field(default_factory=dict, hash=False)
    udp: Mapping[str, int] = field(default_factory=dict, hash=False)
    udp6: Mapping[str, int] = field(default_factory=dict, hash=False)
    memory_migrate: int | None = None  # v1 cpuset.memory_migrate


@dataclass(slots=True, unsafe_hash=True)
class Sample:
    timestamp_ns: int
    ref: ContainerRef
    cpu: CpuStats
    memory: MemoryStats
    blkio: Mapping[str, IoStats] = field(hash=False)  # "major:minor" -> counters
    network: Mapping[str, NetStats] = field(hash=False)  # interface -> counters
    pids: PidsStats
    psi: PsiStats
    spec: Spec
    writable_layer: LayerUsage | None = None  # set by the collector when it sizes layers
    # opt-in groups (``cgroupstats.extras``), None when not asked for or not readable
    extra: Extras | None = None
