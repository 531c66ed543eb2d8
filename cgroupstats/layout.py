"""Where each cgroup controller is mounted under a cgroup root, found once.

v1 hosts mount one hierarchy per controller (``cpu`` and ``cpuacct`` separate, or
co-mounted as ``cpu,cpuacct``), often with a ``unified`` cgroup2 mount beside them
(hybrid); v2 hosts mount one hierarchy at the root. The root is an argument so tests can
point at a fixture tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "hugetlb")


@dataclass(frozen=True)
class Layout:
    root: str
    version: int  # 2 when the root itself is a cgroup2 mount
    dirs: dict[str, str] = field(default_factory=dict)  # v1 controller -> mount dir
    unified: str = ""  # the cgroup2 mount: the root on v2, ``<root>/unified`` on hybrid

    def paths_for(self, cgroup: str) -> dict[str, str]:
        """Absolute directories of the group ``cgroup`` (e.g. "/box/<id>") per controller."""
        rel = cgroup.strip("/")
        if self.version == 2:
            return {"unified": os.path.join(self.unified, rel)}
        paths = {c: os.path.join(d, rel) for c, d in self.dirs.items()}
        if self.unified and os.path.isdir(os.path.join(self.unified, rel)):
            paths["unified"] = os.path.join(self.unified, rel)
        return paths

    @property
    def walk_root(self) -> str:
        """The hierarchy discovery lists groups in: memory on v1 (every container
        runtime uses it), the unified mount on v2."""
        if self.version == 2:
            return self.unified
        for c in ("memory", "cpu", "pids", "cpuacct", "blkio", "cpuset"):
            if c in self.dirs:
                return self.dirs[c]
        return ""

    def relative(self, path: str) -> str:
        """The in-hierarchy path ("/box/<id>") of an absolute group directory."""
        for base in (*self.dirs.values(), self.unified):
            if base and (path == base or path.startswith(base + "/")):
                return "/" + path[len(base) :].strip("/")
        # Written against another root (e.g. the host's while we read a copy): cut at
        # the mount's own directory name.
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part == "unified" or not set(part.split(",")).isdisjoint(CONTROLLERS):
                return "/" + "/".join(parts[i + 1 :])
        if path.startswith("/sys/fs/cgroup/"):
            return path[len("/sys/fs/cgroup") :]
        return path


def detect(cgroup_root: str) -> Layout:
    """Look at the mounts under ``cgroup_root`` once (they do not change while we run)."""
    root = str(cgroup_root).rstrip("/") or "/"
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return Layout(root, 2, {}, root)
    dirs: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.is_symlink())  # real dirs first
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if not entry.is_dir():
            continue
        for part in entry.name.split(","):
            if part in CONTROLLERS and part not in dirs:
                dirs[part] = entry.path
    unified = os.path.join(root, "unified")
    if not os.path.exists(os.path.join(unified, "cgroup.controllers")):
        unified = ""
    if not dirs and unified:
        return Layout(root, 2, {}, unified)
    return Layout(root, 1, dirs, unified)
