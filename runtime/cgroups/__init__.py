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


def warm_migration_lock(root: str = "/sys/fs/cgroup") -> int:
    """Start the kernel's cgroup-migration grace period early; returns a pid to reap.

    Moving a task into a cgroup takes the global ``cgroup_threadgroup_rwsem`` for
    writing, and the first writer after a quiet spell waits a full RCU grace period
    (10-20 ms here: the largest single cost of ``box run``). A writer that comes within
    about one grace period after another does not wait. So ``box run`` forks a child that
    re-writes itself into the cgroup it already is in (no change of membership) while
    the container's state is being written; the real move, ~10 ms later, is then fast.
    Measured: 15 ms -> 0.5 ms per start (bench/runtime_start.py). Best effort: any
    failure just means the real move waits as it would have.
    """
    pid = os.fork()
    if pid:
        return pid
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        target = None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "pids":  # v1: any hierarchy shares the lock
                target = os.path.join(root, "pids", path.lstrip("/"), "cgroup.procs")
                break
            if controllers == "" and os.path.isfile(os.path.join(root, "cgroup.controllers")):
                target = os.path.join(root, path.lstrip("/"), "cgroup.procs")
        if target:
            fd = os.open(target, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)
    finally:
        os._exit(0)
