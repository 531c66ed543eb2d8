"""``box export``: a container's filesystem as a tar stream.

A forked child unshares a private mount namespace and mounts a *read-only* overlay whose
lower dirs are the container's own layer (``diff``) on top of the image's layers: no
upper or work dir, so it can be done while the container runs and its own overlay is
mounted. The mount vanishes with the child; what is written is what the container sees
at ``/`` minus the runtime's mounts (/proc, /sys, /dev, volumes), as ``docker export``.
The walk runs in the confined helper (``runtime.security.confine``): chrooted into that
mount, in its own pid namespace, with the container's capabilities and numeric owners.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from typing import Any

from runtime import syscalls as sc
from runtime.paths import Paths
from runtime.security.confine import run_confined
from runtime.security.tarwalk import NumericWalker


def export_container(paths: Paths, cfg: dict[str, Any], out_fd: int) -> int:
    """Writes the tar to ``out_fd``; returns the child's exit code (0 on success)."""
    lowers = [os.path.join(paths.overlay_dir(cfg["ID"]), "diff"),
              *((cfg.get("Box") or {}).get("LowerDirs") or [])]
    mnt = tempfile.mkdtemp(prefix="box-export-")

    def enter_root() -> None:
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        sc.mount("overlay", mnt, "overlay", sc.MS_RDONLY, f"lowerdir={':'.join(lowers)}")
        os.chroot(mnt)
        os.chdir("/")

    def body() -> int:
        with os.fdopen(out_fd, "wb", closefd=False) as out, \
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            walker = NumericWalker(tf)
            for name in sorted(os.listdir("/")):
                walker.add("/" + name, name)
        return 0

    try:
        return run_confined(cfg, enter_root, body, join_running=False)
    finally:
        os.rmdir(mnt)
