"""``box stats``: docker stats' columns and formulas, read by the collector's readers.

CPU % is docker's: the container's cpu delta over the host's cpu delta (``/proc/stat``)
times the online cpus; MEM USAGE is the working set (usage - inactive_file) over the
memory limit, or over the host's MemTotal when unlimited; NET I/O and BLOCK I/O are
totals. The readers and the ``Sample`` are the bottom layer's (``cgroupstats``), the
collector's too, so the numbers are the ones Prometheus and InfluxDB get.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from runtime.errors import NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

NO_VALUE = "--"
CGROUP_ROOT = "/sys/fs/cgroup"
CLEAR = "\033[2J\033[H"  # docker's redraw on a terminal: clear, cursor home


def add_stats(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


def human3(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    size = float(size)
    while size >= 1000.0 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"


def host_cpu(proc_root: str = "/proc") -> tuple[int, int]:
    """(host cpu time in ns, online cpus) from /proc/stat, as moby's getSystemCPUUsage
    sums it: user nice system idle iowait irq softirq."""
    with open(f"{proc_root}/stat", "rb") as f:
        data = f.read()
    first, _, rest = data.partition(b"\n")
    ticks = sum(int(x) for x in first.split()[1:8])
    online = rest.count(b"\ncpu") + (1 if rest.startswith(b"cpu") else 0)
    return ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK")), online


def host_memory(proc_root: str = "/proc") -> int:
    with open(f"{proc_root}/meminfo", "rb") as f:
        for line in f:
            if line.startswith(b"MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


class StatsRow:
    """The fields ``docker stats --format`` knows."""

    def __init__(self, cid: str, name: str, trunc: bool) -> None:
        self.ID = cid[:12] if trunc else cid
        self.Container = self.ID
        self.Name = name
        self.CPUPerc = "0.00%"
        self.MemUsage = "0B / 0B"
        self.MemPerc = "0.00%"
        self.NetIO = "0B / 0B"
        self.BlockIO = "0B / 0B"
        self.PIDs = "0"


class Stats:
    """Readers of the watched containers and the previous cpu readings (for the deltas)."""

    def __init__(self, paths: Paths, cgroup_root: str = CGROUP_ROOT, proc_root: str = "/proc"):
        from cgroupstats.layout import detect

        self.paths = paths
        self.proc_root = proc_root
        self.cgroup_root = cgroup_root
        self.layout = detect(cgroup_root)
        self.readers: dict[str, Any] = {}
        self.prev: dict[str, tuple[int, int]] = {}  # id -> (container cpu ns, host cpu ns)
        self.mem_total = host_memory(proc_root)

    def rows(self, cfgs: list[dict[str, Any]], trunc: bool) -> list[StatsRow]:
        from cgroupstats import ContainerGone, open_reader
        from cgroupstats.refs import ref_from_doc
        from formats.statefile import CONFIG

        refs = {}
        for cfg in cfgs:
            config = os.path.join(self.paths.container_dir(cfg["ID"]), CONFIG)
            ref = ref_from_doc(cfg, config, self.layout)
            if ref is not None and ref.cgroup_paths:
                refs[ref.id] = ref
        wanted = {c["ID"] for c in cfgs}
        for cid in [c for c in self.readers if c not in refs or c not in wanted]:
            self.readers.pop(cid).close()
            self.prev.pop(cid, None)
        system, online = host_cpu(self.proc_root)
        out = []
        for cfg in cfgs:
            cid = cfg["ID"]
            row = StatsRow(cid, cfg["Name"].lstrip("/"), trunc)
            out.append(row)
            ref = refs.get(cid)
            if ref is None:
                continue  # not running: docker's zero row
            reader = self.readers.get(cid)
            try:
                if reader is None:
                    reader = self.readers[cid] = open_reader(ref, self.cgroup_root, self.proc_root)
                elif reader.ref != ref:
                    reader.rebind(ref)
                sample = reader.read()
            except ContainerGone:
                self.readers.pop(cid, None)
                continue
            self._fill(row, sample, system, online)
        return out

    def _fill(self, row: StatsRow, s: Any, system: int, online: int) -> None:
        cpu = s.cpu.usage_ns
        before = self.prev.get(s.ref.id)
        self.prev[s.ref.id] = (cpu, system)
        percent = 0.0
        if before is not None:
            cpu_delta, system_delta = cpu - before[0], system - before[1]
            ncpu = online or len(s.cpu.per_cpu_ns)
            if system_delta > 0 and cpu_delta > 0:
                percent = cpu_delta / system_delta * ncpu * 100.0
        from runtime.format import bytes_size

        limit = s.spec.memory_limit or self.mem_total
        if self.mem_total and limit > self.mem_total:
            limit = self.mem_total
        used = s.memory.working_set
        net = s.network.values()
        io = s.blkio.values()
        row.CPUPerc = f"{percent:.2f}%"
        row.MemUsage = f"{bytes_size(used)} / {bytes_size(limit)}"
        row.MemPerc = f"{used / limit * 100.0 if limit else 0.0:.2f}%"
        row.NetIO = (f"{human3(sum(n.rx_bytes for n in net))} / "
                     f"{human3(sum(n.tx_bytes for n in net))}")
        row.BlockIO = (f"{human3(sum(d.read_bytes for d in io))} / "
                       f"{human3(sum(d.write_bytes for d in io))}")
        row.PIDs = str(s.pids.current)

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()


def _select(paths: Paths, args: Namespace) -> list[dict[str, Any]]:
    from runtime.state import Store, is_running

    store = Store(paths)
    if args.containers:
        cfgs = []
        for ref in args.containers:
            try:
                cfgs.append(store.load(store.resolve(ref)))
            except NotFound:
                raise NotFound(f"Error response from daemon: No such container: {ref}") from None
        return cfgs
    cfgs = sorted(store.all(), key=lambda c: c["Created"], reverse=True)
    return [c for c in cfgs if args.all or is_running(c)]


def cmd_stats(paths: Paths, args: Namespace) -> int:
    from runtime.format import STATS_HEADERS, STATS_TABLE, render_format

    stats = Stats(paths)
    tty = sys.stdout.isatty()
    try:
        cfgs = _select(paths, args)
        stats.rows(cfgs, not args.no_trunc)  # the first reading: cpu deltas need two
        while True:
            time.sleep(1.0)
            if not args.containers:
                cfgs = _select(paths, args)  # containers come and go while streaming
            rows = stats.rows(cfgs, not args.no_trunc)
            text = render_format(args.format, STATS_TABLE, rows, STATS_HEADERS)
            if args.no_stream:
                sys.stdout.write(text)
                sys.stdout.flush()
                return 0
            sys.stdout.write((CLEAR if tty else "") + text)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        stats.close()
