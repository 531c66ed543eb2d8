"""Pick the cgroup driver once, here; callers only see ``Driver``.

A pure v2 host has ``cgroup.controllers`` at the root itself; anything else (v1, or
hybrid with a ``unified`` v2 mount beside the v1 controllers) gets the v1 driver.
"""

from __future__ import annotations

import os

from runtime.cgroups.base import Driver, Resources

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
