"""The host's OOM-kill counter, so per-container OOM counters are read only when it moved.

Every OOM kill on the host, by a cgroup limit or by the global OOM killer, counts once in
``/proc/vmstat``'s ``oom_kill`` (``count_vm_event(OOM_KILL)``) next to the victim's cgroup
counter (v1 ``memory.oom_control``, v2 ``memory.events``). One read of vmstat per
interval (~18 us) therefore tells whether any container's counter can have changed; while
it stands still a v1 reader keeps its last ``oom_kill`` and skips a file per container
(~1-2 us each). The kernel bumps the two counters a few instructions apart, so the gate
stays open for the interval after a change too: a reader that ran between the two bumps
sees its own on the next read. Where vmstat cannot be read or has no ``oom_kill`` (before
4.13, or a fixture tree) the gate is always open.
"""

from __future__ import annotations

import os

from cgroupstats.parse import READ_SIZE, pread

KEY = b"\noom_kill "


class HostOomKills:
    """``advance()`` once per interval; ``open`` says whether OOM counters may have moved."""

    __slots__ = ("path", "_fd", "_last", "_open_for")

    def __init__(self, proc_root: str = "/proc") -> None:
        self.path = f"{proc_root}/vmstat"
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = -1
        self._last = -1
        self._open_for = 2  # the first two intervals read every counter

    @property
    def open(self) -> bool:
        return self._fd < 0 or self._open_for > 0

    def advance(self) -> None:
        """A new interval: read the host counter; open the gate for this interval and the
        next if it changed (or cannot be read)."""
        if self._fd < 0:
            return
        try:
            data = pread(self._fd, READ_SIZE, 0)
        except OSError:
            self.close()
            return
        i = data.find(KEY)
        if i < 0:
            self.close()  # a kernel without the counter: always open
            return
        end = data.find(b"\n", i + len(KEY))
        count = int(data[i + len(KEY) : end if end > 0 else None])
        if count != self._last:
            self._last = count
            self._open_for = 2
        elif self._open_for > 0:
            self._open_for -= 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
