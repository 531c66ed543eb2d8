"""Where the runtime keeps its state, in one place.

``root`` holds Docker-compatible state (``containers/<id>/config.v2.json`` ...); it is
``--root``, ``$BOX_ROOT`` or ``/var/lib/box``. ``exec_root`` holds what only lives while
the machine is up (monitor pids, locks); ``--exec-root``, ``$BOX_EXEC_ROOT`` or ``/run/box``.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = "/var/lib/box"
DEFAULT_EXEC_ROOT = "/run/box"
CGROUP_PARENT = "box"


class Paths:
    __slots__ = ("root", "exec_root")

    def __init__(self, root: Path | str, exec_root: Path | str) -> None:
        self.root = Path(root)
        self.exec_root = Path(exec_root)

    def __repr__(self) -> str:
        return f"Paths(root={str(self.root)!r}, exec_root={str(self.exec_root)!r})"

    @classmethod
    def from_env(cls, root: str | None = None, exec_root: str | None = None) -> Paths:
        return cls(
            Path(root or os.environ.get("BOX_ROOT") or DEFAULT_ROOT),
            Path(exec_root or os.environ.get("BOX_EXEC_ROOT") or DEFAULT_EXEC_ROOT),
        )

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    def container_dir(self, cid: str) -> Path:
        return self.containers / cid

    def overlay_dir(self, cid: str) -> Path:
        """upper/work dirs of the container's own layer (Docker's overlay2/<id>)."""
        return self.root / "overlay2" / cid

    @property
    def images(self) -> Path:
        return self.root / "image"

    def run_dir(self, cid: str) -> Path:
        return self.exec_root / "containers" / cid
