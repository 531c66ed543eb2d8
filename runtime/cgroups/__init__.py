"""Pick the cgroup driver once, here; callers only see ``Driver``.

A pure v2 host has ``cgroup.controllers`` at the root itself; anything else (v1, or
hybrid with a ``unified`` v2 mount beside the v1 controllers) gets the v1 driver.
"""

from __future__ import annotations

import os

from runtime.cgroups.base import Resources
from runtime.cgroups.driver import Driver

__all__ = ["Driver", "Resources", "driver_for", "open_driver"]


def driver_for(version: int, root: str = "/sys/fs/cgroup", proc_root: str = "/proc") -> Driver:
    """The driver of cgroup ``version`` (1 or 2) rooted at ``root``."""
    if version == 1:
        from runtime.cgroups.v1 import V1Driver

        return V1Driver(root, proc_root)
    if version == 2:
        from runtime.cgroups.v2 import V2Driver

        return V2Driver(root)
    raise ValueError(f"unknown cgroup version {version!r}")


def open_driver(
    root: str = "/sys/fs/cgroup", version: int | None = None, proc_root: str = "/proc"
) -> Driver:
    """The driver for this host: ``version`` if given, else v2 only on a pure v2 root."""
    if version is None:
        version = 2 if os.path.isfile(os.path.join(root, "cgroup.controllers")) else 1
    return driver_for(version, root, proc_root)


def warm_migration_lock(root: str = "/sys/fs/cgroup") -> MigrationWarmer:
    """Start the kernel's cgroup-migration grace period early, and keep it passed until
    ``MigrationWarmer.stop``.

    Moving a task into a cgroup takes the global ``cgroup_threadgroup_rwsem`` for
    writing, and the first writer after a quiet spell waits a full RCU grace period
    (10-20 ms here: the largest single cost of ``box run``). A writer that comes within
    about one grace period after another does not wait. So ``box run`` forks a child that
    re-writes itself into the cgroup it already is in (no change of membership) every few
    milliseconds while the container's state is written and its monitor starts; the
    real move is then fast. One early write was not enough: the move came 15-25 ms
    after it and, measured with ``perf trace``, still waited 10-20 ms in a third to a half
    of the starts. Best effort: any failure just means the real move waits as it would
    have.
    """
    stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(stop_r)
        return MigrationWarmer(pid, stop_w)
    try:
        os.close(stop_w)
        target = _own_procs_file(root)
        if target:
            _keep_writing(target, stop_r)
    finally:
        os._exit(0)


class MigrationWarmer:
    """The child of ``warm_migration_lock``: ``stop`` it once the container's first
    process has joined its cgroup (the container has started, or failed to)."""

    def __init__(self, pid: int, stop_w: int) -> None:
        self.pid = pid
        self._stop_w = stop_w

    def stop(self) -> None:
        if self._stop_w < 0:
            return
        os.close(self._stop_w)  # its poll wakes with EOF: it is done within one write
        self._stop_w = -1
        os.waitpid(self.pid, 0)


_WARM_EVERY = 0.003  # s: well inside one grace period (~10 ms here)
_WARM_AT_MOST = 10.0  # s: a command that never stops it (killed) must not leave it running


def _own_procs_file(root: str) -> str | None:
    """Our own cgroup's ``cgroup.procs``: v1's pids hierarchy (any v1 hierarchy shares the
    lock), or the v2 one on a pure v2 host."""
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    target = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "pids":
            return os.path.join(root, "pids", path.lstrip("/"), "cgroup.procs")
        if controllers == "" and os.path.isfile(os.path.join(root, "cgroup.controllers")):
            target = os.path.join(root, path.lstrip("/"), "cgroup.procs")
    return target


def _keep_writing(target: str, stop_r: int) -> None:
    import select
    import time

    fd = os.open(target, os.O_WRONLY)
    poller = select.poll()
    poller.register(stop_r, select.POLLIN)
    deadline = time.monotonic() + _WARM_AT_MOST
    while time.monotonic() < deadline:
        os.write(fd, b"0")
        if poller.poll(_WARM_EVERY * 1000):  # EOF: the command is done with us
            return
