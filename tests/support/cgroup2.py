"""The host's cgroup layout for tests, and ``needs_v2``: the kernel tests that need real v2
files (controllers enabled, ``memory.events``, ``memory.peak``, ``io.stat``).

This development host is hybrid v1 (its cgroup2 mount at ``/sys/fs/cgroup/unified`` has no
controllers), so those tests skip here and run in node 1 (tests/nodes), a Debian 12 guest
with systemd on pure v2, under the guest's pytest; the host reads its junit back and
reports each of them. On a pure-v2 host they run in place.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CGROUP = Path("/sys/fs/cgroup")
NEEDS_V2_REASON = "needs a pure cgroup v2 host: runs in node 1 (tests/nodes)"
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


def pure_v2(root: Path = CGROUP) -> bool:
    """The root itself is a cgroup2 mount (no v1 hierarchy beside it)."""
    return (root / "cgroup.controllers").is_file() and not (root / "memory").is_dir()


def unified_root(root: Path = CGROUP) -> Path | None:
    """Where the cgroup2 hierarchy is: the root on pure v2, ``unified`` on hybrid."""
    if (root / "cgroup.controllers").is_file():
        return root
    if (root / "unified" / "cgroup.controllers").is_file():
        return root / "unified"
    return None


def hierarchies(root: Path = CGROUP) -> list[Path]:
    """Every hierarchy's mount directory under ``root``: the root alone on pure v2; each
    v1 controller's directory (symlinked co-mounts once) and ``unified`` otherwise."""
    if (root / "cgroup.controllers").is_file():
        return [root]
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    seen: set[str] = set()
    out = []
    for d in entries:
        real = os.path.realpath(d)
        if d.is_dir() and real not in seen:
            seen.add(real)
            out.append(d)
    return out


needs_v2 = pytest.mark.skipif(not (pure_v2() and os.geteuid() == 0), reason=NEEDS_V2_REASON)


def container_groups(cid: str, root: Path = CGROUP) -> list[Path]:
    """The container's groups (``box/<cid>``) in every hierarchy that has one."""
    return [h / "box" / cid for h in hierarchies(root) if (h / "box" / cid).is_dir()]


def controller_group(controller: str, cid: str, root: Path = CGROUP) -> Path:
    """The directory holding ``controller``'s files for container ``cid``: its one group
    on pure v2, the controller's hierarchy on v1 and hybrid."""
    return root / "box" / cid if pure_v2(root) else root / controller / "box" / cid
