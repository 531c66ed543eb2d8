"""Tasks of a group by state, and cAdvisor's smoothed load (its ``cpuLoad`` group).

cgroup v1: one netlink request per group (taskstats' CGROUPSTATS_CMD_GET on the
directory's descriptor: what cAdvisor's load reader asks), which counts running,
stopped, uninterruptible and iowait tasks in the kernel, and the group's ``tasks`` file
for how many there are. The kernel's own sleeping count compares the task state exactly
with TASK_INTERRUPTIBLE, so since 6.1 (TASK_FREEZABLE is or-ed into most sleeps) it
misses nearly every sleeping task (0 for a process in nanosleep, checked here): sleeping
is taken as the tasks not counted in another state. The kernel answers for v1
directories only (EINVAL on cgroup2), so on v2 the group's ``cgroup.threads`` are read
and each task's state letter from ``/proc/<tid>/stat`` (no iowait there: 0).

Cost: a netlink round trip is ~17 us and /proc/<tid>/stat more, so the counts are asked
for again only when the group's cpu usage moved since the last reading or that reading
had a running, uninterruptible or stopped task: a task changes state only by running
(forking, exiting, sleeping, waking into D or T all run kernel code on its behalf), so
an idle group's counts cannot have changed. Not seen until it first runs: a task woken
by another that then gets no cpu at all for a whole interval, or one moved into the
group from outside while it sleeps.

Load: cAdvisor's ``loadAvg = loadAvg*d + n*(1-d)``, ``d = exp(-interval/10)``, first
sample taken as is, exported as ``int(loadAvg*1000)`` ("milli-load"): the same number.
"""

from __future__ import annotations

import math
import os
import socket
import struct

from cgroupstats.model import TaskStats
from cgroupstats.parse import GONE_ERRNOS, READ_SIZE, pread

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_NAME = 2
CTRL_ATTR_FAMILY_ID = 1
CGROUPSTATS_CMD_GET = 4
CGROUPSTATS_CMD_ATTR_FD = 1
NLMSG_ERROR = 2
NLM_F_REQUEST = 1


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("HH", size, kind) + data + b"\0" * ((4 - size % 4) % 4)


def _msg(family: int, cmd: int, attrs: bytes, seq: int) -> bytes:
    payload = struct.pack("BBH", cmd, 1, 0) + attrs
    return struct.pack("IHHII", 16 + len(payload), family, NLM_F_REQUEST, seq, 0) + payload


class Netlink:
    """One generic-netlink socket shared by every group's request (taskstats family)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_GENERIC)
        self.sock.bind((0, 0))
        self.sock.send(_msg(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                            _attr(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0"), 1))
        reply = self.sock.recv(65536)
        self.family = 0
        if struct.unpack_from("H", reply, 4)[0] != NLMSG_ERROR:
            off, end = 20, struct.unpack_from("I", reply)[0]
            while off + 4 <= end:
                size, kind = struct.unpack_from("HH", reply, off)
                if kind == CTRL_ATTR_FAMILY_ID:
                    self.family = struct.unpack_from("H", reply, off + 4)[0]
                off += (size + 3) & ~3
        if not self.family:
            self.sock.close()
            raise OSError("taskstats netlink family not available")

    def cgroupstats(self, dir_fd: int) -> tuple[int, int, int, int, int]:
        """(sleeping, running, stopped, uninterruptible, iowait) of the group; OSError
        with the kernel's errno when it refuses (EINVAL: not a v1 directory)."""
        self.sock.send(_msg(self.family, CGROUPSTATS_CMD_GET,
                            _attr(CGROUPSTATS_CMD_ATTR_FD, struct.pack("I", dir_fd)), 2))
        reply = self.sock.recv(4096)
        if struct.unpack_from("H", reply, 4)[0] == NLMSG_ERROR:
            err = -struct.unpack_from("i", reply, 16)[0]
            raise OSError(err, os.strerror(err))
        return struct.unpack_from("5Q", reply, 24)

    def close(self) -> None:
        self.sock.close()


STATES = {b"R": 1, b"S": 0, b"D": 3, b"T": 2, b"t": 2}  # index into the five counts


def count_proc(threads: bytes, proc_root: str) -> tuple[int, int, int, int, int]:
    """The five counts from ``/proc/<tid>/stat`` state letters (iowait unknown: 0)."""
    counts = [0, 0, 0, 0, 0]
    for tid in threads.split():
        try:
            fd = os.open(f"{proc_root}/{tid.decode()}/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # exited meanwhile
        try:
            data = os.read(fd, 512)
        except OSError:
            continue
        finally:
            os.close(fd)
        slot = STATES.get(data[data.rfind(b")") + 2:][:1])
        if slot is not None:
            counts[slot] += 1
    return counts[0], counts[1], counts[2], counts[3], counts[4]


class Tasks:
    """One group's task counts and smoothed load; ``read`` once per sample."""

    def __init__(self, directory: str, version: int, interval: float, proc_root: str = "/proc",
                 netlink: Netlink | None = None) -> None:
        self._netlink = netlink if version == 1 else None
        self._proc_root = proc_root
        self._decay = math.exp(-max(interval, 0.001) / 10)
        self._load = self._load_d = -1.0
        self._fd = -1
        self._usage = -1
        self._last: TaskStats | None = None
        self._counts = self._last_counts = (0, 0, 0, 0, 0)
        flags = os.O_RDONLY | os.O_CLOEXEC
        self._dir = -1
        if self._netlink is not None:
            self._dir = os.open(directory, flags | os.O_DIRECTORY)
        # v2's thread list, or v1's (also counted beside taskstats' answer)
        name = "cgroup.threads" if version == 2 else "tasks"
        try:
            self._fd = os.open(os.path.join(directory, name), flags)
        except OSError:
            self.close()
            raise

    def read(self, usage_ns: int = -1) -> TaskStats:
        """The counts and smoothed loads; ``usage_ns`` (the group's cpu usage this
        sample, -1 unknown) lets an idle group's counts be kept (see the module)."""
        last = self._last
        if usage_ns < 0 or usage_ns != self._usage or last is None or (
                last.running or last.uninterruptible or last.stopped):
            self._usage = usage_ns
            self._counts = self._count()
        counts = self._counts
        d = self._decay
        running, uninterruptible = counts[1], counts[3]
        self._load = running if self._load < 0 else self._load * d + running * (1 - d)
        self._load_d = (uninterruptible if self._load_d < 0
                        else self._load_d * d + uninterruptible * (1 - d))
        load, load_d = float(int(self._load * 1000)), float(int(self._load_d * 1000))
        if (last is not None and load == last.load and load_d == last.load_d
                and counts == self._last_counts):
            return last  # samples are never changed once made: hand the same one out
        self._last_counts = counts
        self._last = TaskStats(*counts, load, load_d)
        return self._last

    def _count(self) -> tuple[int, int, int, int, int]:
        if self._netlink is not None:
            tasks = pread(self._fd, READ_SIZE, 0).count(b"\n")
            try:
                _, running, stopped, unint, iowait = self._netlink.cgroupstats(self._dir)
            except OSError as exc:
                if exc.errno in GONE_ERRNOS:
                    raise
                raise OSError(exc.errno, f"cgroupstats: {exc.strerror}") from None
            return max(0, tasks - running - stopped - unint), running, stopped, unint, iowait
        return count_proc(pread(self._fd, READ_SIZE, 0), self._proc_root)

    def close(self) -> None:
        for attr in ("_fd", "_dir"):
            fd = getattr(self, attr, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
