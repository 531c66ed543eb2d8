"""The kernel's own record of OOM kills, from ``/dev/kmsg``: for a container that lived
and died between two scans, whose group is gone and whose state file does not say
``OOMKilled`` (Docker 20.10 on v2 does not always record it), this is the only record
left. The kernel writes, for each memcg OOM kill (``dump_oom_summary``)::

    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/system.slice/docker-<id>.scope,
    task_memcg=/system.slice/docker-<id>.scope,task=sh,pid=1234,uid=0

with the groups' paths from their hierarchy's root (the same path a ContainerRef's
``cgroup`` holds). The line is part of the OOM report the kernel rate-limits (10 per 5 s),
so a burst of kills can lose some: this is a fallback beside ``memory.events`` and the
state file, never the only source.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

KEEP = 1024  # kills remembered (the groups of containers not yet handed over by a scan)
PREFIX = "oom-kill:"


@dataclass(frozen=True)
class KernelOomKill:
    """One ``oom-kill:`` record: the group that hit its limit and the victim."""

    oom_memcg: str
    task_memcg: str
    task: str
    pid: int
    monotonic_us: int  # the record's timestamp (CLOCK_MONOTONIC, microseconds)


def parse_record(record: bytes) -> KernelOomKill | None:
    """A /dev/kmsg record ("prio,seq,usec,flags;message\\n continuation...") -> the kill
    it reports, or None for every other message."""
    head, sep, rest = record.partition(b";")
    message = rest.split(b"\n", 1)[0].decode(errors="replace")
    if not sep or not message.startswith(PREFIX):
        return None
    fields = dict(part.split("=", 1) for part in message[len(PREFIX):].split(",") if "=" in part)
    try:
        usec = int(head.split(b",")[2])
        pid = int(fields.get("pid", "0"))
    except (IndexError, ValueError):
        return None
    memcg = fields.get("oom_memcg", "")
    if not memcg:  # a global OOM (no memcg limit hit): no container's limit to blame
        return None
    return KernelOomKill(memcg, fields.get("task_memcg", memcg), fields.get("task", ""), pid,
                         usec)


class KmsgOomKills:
    """Reads the kernel log from the moment it is opened (older records are not ours to
    report) and remembers the groups OOM kills hit, for ``killed(cgroup)``."""

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.lseek(self._fd, 0, os.SEEK_END)  # from now on
        self.kills: OrderedDict[str, KernelOomKill] = OrderedDict()  # oom_memcg -> last

    @classmethod
    def open(cls, path: str = "/dev/kmsg") -> KmsgOomKills | None:
        """None where the kernel log cannot be read (no root, no /dev/kmsg)."""
        try:
            return cls(path)
        except OSError:
            return None

    def drain(self) -> list[KernelOomKill]:
        """Every OOM kill logged since the last drain (remembered for ``killed``)."""
        found = []
        while self._fd >= 0:
            try:
                record = os.read(self._fd, 8192)  # one record per read
            except BlockingIOError:
                break
            except BrokenPipeError:  # EPIPE: records overwritten before we read them
                continue
            except OSError:
                self.close()
                break
            if not record:
                break
            kill = parse_record(record)
            if kill is not None:
                found.append(kill)
                self.kills.pop(kill.oom_memcg, None)
                self.kills[kill.oom_memcg] = kill
                while len(self.kills) > KEEP:
                    self.kills.popitem(last=False)
        return found

    def killed(self, cgroup: str = "", container_id: str = "") -> KernelOomKill | None:
        """The last logged OOM kill of the group ``cgroup`` ("/box/<id>") or a group below
        it; or, for a container whose group is gone and unknown (an ended ref), of a group
        named by its id, as every engine names them ("/box/<id>", "/docker/<id>",
        "/system.slice/docker-<id>.scope"). Read anew."""
        self.drain()
        cgroup = "/" + cgroup.strip("/") if cgroup else ""
        for kill in reversed(self.kills.values()):
            if cgroup and (kill.oom_memcg == cgroup or kill.oom_memcg.startswith(cgroup + "/")):
                return kill
            if len(container_id) >= 12 and any(
                    container_id in part for part in kill.oom_memcg.split("/")):
                return kill
        return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
