"""Where the runtime keeps its state, in one place.

``root`` holds Docker-compatible state (``containers/<id>/config.v2.json`` ...); it is
``--root``, ``$BOX_ROOT`` or ``/var/lib/box``. ``exec_root`` holds what only lives while
the machine is up (monitor pids, locks); ``--exec-root``, ``$BOX_EXEC_ROOT`` or ``/run/box``.
"""

from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/box"
DEFAULT_EXEC_ROOT = "/run/box"
CGROUP_PARENT = "box"


class Paths:
    """Directory names as plain strings: pathlib costs ~3 ms of import on ``box run``."""

    __slots__ = ("root", "exec_root")

    def __init__(self, root: str | os.PathLike[str], exec_root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.exec_root = os.fspath(exec_root)

    def __repr__(self) -> str:
        return f"Paths(root={self.root!r}, exec_root={self.exec_root!r})"

    @classmethod
    def from_env(cls, root: str | None = None, exec_root: str | None = None) -> Paths:
        return cls(root or os.environ.get("BOX_ROOT") or DEFAULT_ROOT,
                   exec_root or os.environ.get("BOX_EXEC_ROOT") or DEFAULT_EXEC_ROOT)

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid)

    def overlay_dir(self, cid: str) -> str:
        """upper/work dirs of the container's own layer (Docker's overlay2/<id>)."""
        return os.path.join(self.root, "overlay2", cid)

    @property
    def images(self) -> str:
        return os.path.join(self.root, "image")

    def run_dir(self, cid: str) -> str:
        return os.path.join(self.exec_root, "containers", cid)

    @property
    def locks(self) -> str:
        return os.path.join(self.exec_root, "locks")


def private_dir(path: str, mode: int = 0o700) -> None:
    """``path`` exists with ``mode``, an older one tightened (CVE-2021-41091: setuid
    files of layers, containers and volumes reachable by other local users)."""
    os.makedirs(path, mode=mode, exist_ok=True)
    if os.stat(path).st_mode & 0o7777 != mode:
        os.chmod(path, mode)


# The root: 0710 (root's group may traverse, nobody else); what holds layers, a
# container's layer and volumes: 0700.
ROOT_MODE = 0o710
