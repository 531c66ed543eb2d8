"""The opt-in groups of one container (cAdvisor's ``cpuLoad``, ``process``, ``tcp``,
``udp``, ``hugetlb``, ``memory_numa``, ``cpuset``), read beside the ``Sample`` only when
asked for, so the default set costs nothing more.

One ``ExtrasReader`` per container holds what it needs open; ``read`` fills an
``Extras``. A group whose files are missing (controller not mounted, kernel without
them) stays empty: the families then have no series for it, never a made-up 0. A group
that fails with an OS error is skipped for that sample (the container's main reader
decides whether the container is gone).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import TypeVar

from cgroupstats.model import ContainerRef, Extras, ProcessStats, TaskStats
from cgroupstats.parse import INT_SIZE, READ_SIZE, Held, pread
from cgroupstats.procs import count_tcp, count_udp, process_stats, read_net
from cgroupstats.tasks import Netlink, Tasks
from cgroupstats.v1 import numa as numa_v1
from cgroupstats.v1.hugetlb import Hugetlb as V1Hugetlb
from cgroupstats.v2 import numa as numa_v2
from cgroupstats.v2.hugetlb import Hugetlb as V2Hugetlb

T = TypeVar("T")
NetCache = dict[tuple[int, int], tuple[dict[str, int], ...]]
# the cAdvisor categories read here (the rest come from the Sample)
GROUPS = frozenset({"cpuLoad", "process", "tcp", "udp", "hugetlb", "memory_numa", "cpuset"})


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


class ExtrasReader:
    """The asked-for groups of one container; ``close`` releases what it holds."""

    def __init__(self, ref: ContainerRef, groups: Collection[str], interval: float = 1.0,
                 proc_root: str = "/proc", netlink: Netlink | None = None) -> None:
        self.ref = ref
        self.groups = frozenset(groups) & GROUPS
        self._proc_root = proc_root
        paths, v2 = ref.cgroup_paths, ref.cgroup_version == 2
        unified = ref.unified_path
        self._fds: list[int] = []
        self._held: list[Held] = []
        self.tasks: Tasks | None = None
        if "cpuLoad" in self.groups:
            where = unified if v2 else paths.get("cpu", "")
            if where:
                try:
                    self.tasks = Tasks(where, 2 if v2 else 1, interval, proc_root,
                                       None if v2 else netlink)
                except OSError:
                    self.tasks = None
        self._procs = -1
        if "process" in self.groups:
            where = unified if v2 else paths.get("pids") or paths.get("memory", "")
            self._procs = self._keep(_open(f"{where}/cgroup.procs")) if where else -1
        self._numa = -1
        if "memory_numa" in self.groups:
            where = unified if v2 else paths.get("memory", "")
            self._numa = self._keep(_open(f"{where}/memory.numa_stat")) if where else -1
        self._migrate = -1
        if "cpuset" in self.groups and not v2 and paths.get("cpuset"):
            self._migrate = self._keep(_open(f"{paths['cpuset']}/cpuset.memory_migrate"))
        self.hugetlb: V1Hugetlb | V2Hugetlb | None = None
        if "hugetlb" in self.groups:
            where = unified if v2 else paths.get("hugetlb", "")
            if where and os.path.isdir(where):
                held = Held(where)
                self._held.append(held)
                self.hugetlb = V2Hugetlb(held) if v2 else V1Hugetlb(held)

        # the network namespace's identity: tcp/udp are read once per namespace and tick
        # when the caller shares a cache (a pod's containers share one namespace)
        self._netns: tuple[int, int] | None = None
        if ref.pid and self.groups & {"tcp", "udp"}:
            try:
                st = os.stat(f"{proc_root}/{ref.pid}/ns/net")
                self._netns = (st.st_dev, st.st_ino)
            except OSError:
                self._netns = None
        self._only_tasks = self.groups == {"cpuLoad"} and self.tasks is not None
        self._last: Extras | None = None

    def _read_net(self, pid: int) -> tuple[dict[str, int], ...]:
        root, groups = self._proc_root, self.groups
        tcp = "tcp" in groups
        udp = "udp" in groups
        return (_net(root, pid, "tcp", count_tcp) if tcp else {},
                _net(root, pid, "tcp6", count_tcp) if tcp else {},
                _net(root, pid, "udp", count_udp) if udp else {},
                _net(root, pid, "udp6", count_udp) if udp else {})

    def _keep(self, fd: int) -> int:
        if fd >= 0:
            self._fds.append(fd)
        return fd

    def read(self, usage_ns: int = -1, net_cache: NetCache | None = None) -> Extras:
        """One reading of every asked-for group (empty where unreadable); ``usage_ns``:
        the group's cpu usage in this sample (lets the task counts of an idle group be
        kept, see ``cgroupstats.tasks``). With only ``cpuLoad`` asked for (cAdvisor's
        default set) an unchanged reading hands out the previous object again.
        ``net_cache`` (emptied by the caller every tick) holds each network namespace's
        tcp/udp counts, read once per namespace: reading /proc/<pid>/net/tcp walks the
        kernel's whole established hash (~5-9 ms here), whoever asks."""
        groups = self.groups
        reader = self.tasks
        if reader is not None:
            tasks = _try(lambda: reader.read(usage_ns))
            if self._only_tasks:
                last = self._last
                if last is not None and last.tasks is tasks:
                    return last
                self._last = Extras(tasks=tasks)
                return self._last
        else:
            tasks = None
        out = Extras(tasks=tasks)
        if self._procs >= 0:
            out.processes = _try(lambda: process_stats(pread(self._procs, READ_SIZE, 0),
                                                       self._proc_root, self.ref.pid))
        pid = self.ref.pid
        if pid and groups & {"tcp", "udp"}:
            key = self._netns
            shared = net_cache.get(key) if net_cache is not None and key is not None else None
            if shared is None:
                shared = self._read_net(pid)
                if net_cache is not None and key is not None:
                    net_cache[key] = shared
            out.tcp, out.tcp6, out.udp, out.udp6 = shared
        if self.hugetlb is not None:
            out.hugetlb = _try(self.hugetlb.read) or {}
        if self._numa >= 0:
            parse = numa_v2.parse_numa if self.ref.cgroup_version == 2 else numa_v1.parse_numa
            out.numa = _try(lambda: parse(pread(self._numa, READ_SIZE, 0))) or {}
        if self._migrate >= 0:
            out.memory_migrate = _try(lambda: int(pread(self._migrate, INT_SIZE, 0)))
        return out

    def close(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)
        for held in self._held:
            held.close()
        self._held = []
        if self.tasks is not None:
            self.tasks.close()


def _try(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except (OSError, ValueError, IndexError):
        return None


def _net(proc_root: str, pid: int, name: str,
         count: Callable[[bytes], dict[str, int]]) -> dict[str, int]:
    text = read_net(proc_root, pid, name)
    if text is None:
        return {}
    try:
        return count(text)
    except (ValueError, IndexError):
        return {}


__all__ = ["GROUPS", "ExtrasReader", "Netlink", "ProcessStats", "TaskStats"]
