"""The bottom layer's cgroup side: read one container's accounting into a ``Sample``, on
cgroup v1 or v2 alike (the collector's and ``box stats``'s readers).

What lives here: ``model`` (``ContainerRef``, ``Sample`` and its parts), ``refs`` (a ref
from the state files), ``layout`` (where the hierarchies are mounted), ``parse`` (shared
parse helpers, ``ParseError``, ``ContainerGone``), ``v1/`` and ``v2/`` (one module per
controller), ``net`` (``/proc/<pid>/net/dev``), ``oomkills`` (host OOM counter),
``extras`` (cAdvisor's opt-in groups beside a sample: ``tasks``, ``procs``, ``v1|v2/
hugetlb``, ``v1|v2/numa``), and ``open_reader`` (this module).

Checklist, a new cgroup file: 1. its field in ``model`` (a unit fixed in the docstring);
2. the v1 reader and 3. the v2 reader that fill it (``v1/<controller>.py``,
``v2/<controller>.py``; the contract test ``tests/collector/test_collector_contract.py``
runs both over ``tests/fixtures/cgroup_v1|v2``); 4. the line protocol field
(``collector/lineproto.py``); 5. the metric table (``collector/metrics/<category>.py``), which
Prometheus' ``/metrics`` is made from.

``open_reader`` picks the version once, from the ``ContainerRef``; the controller modules
(``v1/*``, ``v2/*``) hold their files open and fill their part of the shared model, so
callers never learn which version ran. OS errors are translated here, at the edge: a
group that vanished (ENOENT/ENODEV) raises ``ContainerGone`` and releases every held
file; a malformed file raises ``ParseError`` naming the file and its content.
"""

from __future__ import annotations

from dataclasses import replace
from time import time_ns
from typing import Protocol

from cgroupstats.layout import Layout, detect
from cgroupstats.model import ContainerRef, MemoryStats, PidsStats, Sample, Spec
from cgroupstats.net import NetNamespaces, NetReader
from cgroupstats.oomkills import HostOomKills
from cgroupstats.parse import GONE_ERRNOS, ContainerGone, Held, ParseError
from cgroupstats.v1.blkio import Blkio as V1Blkio
from cgroupstats.v1.cpu import Cpu as V1Cpu
from cgroupstats.v1.cpuset import Cpuset as V1Cpuset
from cgroupstats.v1.memory import Memory as V1Memory
from cgroupstats.v1.pids import Pids as V1Pids
from cgroupstats.v2.cpu import Cpu as V2Cpu
from cgroupstats.v2.cpuset import Cpuset as V2Cpuset
from cgroupstats.v2.io import Io as V2Io
from cgroupstats.v2.memory import Memory as V2Memory
from cgroupstats.v2.pids import Pids as V2Pids
from cgroupstats.v2.psi import EMPTY as NO_PSI
from cgroupstats.v2.psi import Psi

__all__ = [
    "ContainerGone",
    "Layout",
    "ParseError",
    "Reader",
    "detect",
    "open_reader",
]

NO_MEMORY = MemoryStats()
NO_PIDS = PidsStats()


class Reader(Protocol):
    """One container's held files. ``read`` is called every interval; ``close`` once."""

    ref: ContainerRef

    def read(self) -> Sample: ...

    def rebind(self, ref: ContainerRef) -> None: ...

    def close(self) -> None: ...

    @property
    def open_files(self) -> int: ...


class _Base:
    """What both versions share: the ref, the held groups, net/dev, error translation."""

    def __init__(self, ref: ContainerRef, proc_root: str, spec_every: int = 1,
                 net: NetNamespaces | None = None,
                 oom: HostOomKills | None = None) -> None:
        self.ref = ref
        self._proc_root = proc_root
        self._namespaces = net
        self._oom = oom
        self._spec_every = max(1, spec_every)
        self._spec_due = 0  # reads left until the spec files are read again
        self._spec = Spec()
        self._held: list[Held] = []
        self._net = NetReader(proc_root, 0)
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self._net = NetReader(proc_root, ref.pid, net)

    def _open(self) -> None:
        raise NotImplementedError

    def _read_spec(self) -> Spec:
        raise NotImplementedError

    def _spec_now(self) -> Spec:
        """The limits, re-read every ``spec_every`` samples (they change only on update)."""
        if self._spec_due <= 0:
            self._spec = self._read_spec()
            self._spec_due = self._spec_every
        self._spec_due -= 1
        return self._spec

    def _hold(self, directory: str) -> Held:
        held = Held(directory)
        self._held.append(held)
        return held

    @property
    def open_files(self) -> int:
        """How many descriptors this reader holds (for the collector's fd accounting)."""
        return sum(len(h.fds) for h in self._held) + (self._net.private_fd >= 0)

    def rebind(self, ref: ContainerRef) -> None:
        """Take a newer ref of the same container (new pid after a restart, new paths)."""
        old, self.ref = self.ref, ref
        self._spec_due = 0  # a new state file may mean new limits (docker update)
        if ref.cgroup_paths != old.cgroup_paths:
            self._close_groups()
            try:
                self._open()
            except BaseException:
                self.close()
                raise
        if ref.pid != old.pid:
            self._net.close()
            self._net = NetReader(self._proc_root, ref.pid, self._namespaces)

    def _gone(self, exc: OSError) -> Exception:
        if exc.errno in GONE_ERRNOS:
            self.close()
            return ContainerGone(self.ref.cgroup or self.ref.id)
        return exc

    def _bad(self, exc: Exception) -> Exception:
        for held in self._held:
            err = held.diagnose()
            if isinstance(err, ContainerGone):
                self.close()
                return err
            if err is not None:
                return err
        return ParseError(self.ref.cgroup, "?", b"", f"{type(exc).__name__}: {exc}")

    def _close_groups(self) -> None:
        held, self._held = self._held, []
        for h in held:
            h.close()

    def close(self) -> None:
        """Release every held descriptor; safe to call twice."""
        self._close_groups()
        self._net.close()


class V1Reader(_Base):
    """cgroup v1: one directory per controller; PSI from the unified side on hybrid hosts."""

    def _open(self) -> None:
        paths = self.ref.cgroup_paths
        cpu = self._hold(paths["cpu"]) if "cpu" in paths else None
        if "cpuacct" not in paths:
            acct = None
        elif cpu is not None and paths["cpuacct"] == paths["cpu"]:
            acct = cpu  # co-mounted cpu,cpuacct
        else:
            acct = self._hold(paths["cpuacct"])
        self._cpu = V1Cpu(cpu, acct)
        self._memory = V1Memory(self._hold(paths["memory"])) if "memory" in paths else None
        self._blkio = V1Blkio(self._hold(paths["blkio"])) if "blkio" in paths else None
        self._pids = V1Pids(self._hold(paths["pids"])) if "pids" in paths else None
        self._cpuset = V1Cpuset(self._hold(paths["cpuset"])) if "cpuset" in paths else None
        self._psi = Psi(self._hold(paths["unified"])) if "unified" in paths else None

    def _read_spec(self) -> Spec:
        quota, period, shares = self._cpu.read_spec()
        limit, swap_limit, reservation = (
            self._memory.read_spec() if self._memory is not None else (0, 0, 0)
        )
        cpus, mems = self._cpuset.read() if self._cpuset is not None else ("", "")
        pids_max = self._pids.read_spec() if self._pids is not None else 0
        return Spec(limit, swap_limit, reservation, quota, period, shares, cpus, mems, pids_max)

    def read(self) -> Sample:
        now = time_ns()
        try:
            spec = self._spec_now()
            cpu = self._cpu.read((spec.cpu_period_us or 100_000) if spec.cpu_quota_us else 0)
            memory = (
                self._memory.read(spec.memory_limit != 0, self._oom is None or self._oom.open)
                if self._memory is not None
                else NO_MEMORY
            )
            blkio = self._blkio.read() if self._blkio is not None else {}
            pids = self._pids.read(spec.pids_max) if self._pids is not None else NO_PIDS
            psi = self._psi.read() if self._psi is not None else NO_PSI
        except OSError as exc:
            raise self._gone(exc) from None
        except (ValueError, IndexError) as exc:
            raise self._bad(exc) from exc
        return Sample(now, self.ref, cpu, memory, blkio, self._net.read(), pids, psi, spec)


class V2Reader(_Base):
    """cgroup v2: every controller's files in one directory."""

    def _open(self) -> None:
        held = self._hold(self.ref.unified_path)
        self._cpu = V2Cpu(held)
        self._memory = V2Memory(held)
        self._io = V2Io(held)
        self._pids = V2Pids(held)
        self._cpuset = V2Cpuset(held)
        self._psi = Psi(held)

    def _read_spec(self) -> Spec:
        quota, period, shares = self._cpu.read_spec()
        limit, swap_limit, reservation = self._memory.read_spec()
        cpus, mems = self._cpuset.read()
        pids_max = self._pids.read_spec()
        return Spec(limit, swap_limit, reservation, quota, period, shares, cpus, mems, pids_max)

    def read(self) -> Sample:
        now = time_ns()
        try:
            spec = self._spec_now()
            cpu = self._cpu.read()
            memory = self._memory.read()
            blkio = self._io.read()
            pids = self._pids.read(spec.pids_max)
            psi = self._psi.read()
        except OSError as exc:
            raise self._gone(exc) from None
        except (ValueError, IndexError) as exc:
            raise self._bad(exc) from exc
        return Sample(now, self.ref, cpu, memory, blkio, self._net.read(), pids, psi, spec)


_layouts: dict[str, Layout] = {}


def open_reader(
    ref: ContainerRef,
    cgroup_root: str = "/sys/fs/cgroup",
    proc_root: str = "/proc",
    spec_every: int = 1,
    net: NetNamespaces | None = None,
    oom: HostOomKills | None = None,
) -> Reader:
    """Open the reader of ``ref``'s version, holding its files; ContainerGone if the group
    is already gone. Paths missing from ``ref`` are derived from ``ref.cgroup`` and the
    mounts under ``cgroup_root``.

    ``spec_every=N`` re-reads the limit files (10 of ~23, opened per read: ~7 us each)
    only every Nth sample and whenever ``rebind`` gets a new ref; a v1 group without a
    cpu quota / memory limit then also reads cpu.stat / memory.failcnt only then, since
    those count hits of its own quota / limit. ``net`` shares net/dev between the
    containers of one network namespace (see ``cgroupstats.net``); ``oom`` lets a v1
    reader skip memory.oom_control while the host counted no OOM kill
    (``cgroupstats.oomkills``)."""
    if not ref.cgroup_paths:
        layout = _layouts.get(str(cgroup_root))
        if layout is None:
            layout = _layouts[str(cgroup_root)] = detect(str(cgroup_root))
        ref = replace(ref, cgroup_paths=layout.paths_for(ref.cgroup), cgroup_version=layout.version)
    if ref.cgroup_version == 2:
        if not ref.unified_path:  # a writer that keyed the one v2 path by controller
            ref = replace(ref, cgroup_paths={"unified": next(iter(ref.cgroup_paths.values()))})
        return V2Reader(ref, proc_root, spec_every, net, oom)
    return V1Reader(ref, proc_root, spec_every, net, oom)
