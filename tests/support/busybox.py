"""The busybox test image, built from the host's Debian ``busybox-static``.

Tests need a real, small, statically linked rootfs that works in any mount namespace;
Debian ships one binary with every applet, so the image is that binary, one symlink per
applet, and the few /etc files a container expects (users root, daemon, nobody, app).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
MTIME = 1_700_000_000  # fixed, so the same rootfs always gives the same tar (and diff_id)
APP_UID = 1000
APP_GID = 1000

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
"""
GROUP = """\
root:x:0:
daemon:x:1:
app:x:1000:
nogroup:x:65534:
"""
DIRS = {
    "bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "etc": 0o755, "tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755,
    "root": 0o700, "home": 0o755, "home/app": 0o755,
}


def applets() -> list[str]:
    """Install paths of every applet, relative to / (``busybox --list-full``)."""
    out = subprocess.run([str(BUSYBOX), "--list-full"], check=True, capture_output=True,
                         text=True).stdout
    return [line.strip().lstrip("/") for line in out.splitlines() if line.strip()]


def build_busybox_rootfs(dest: Path) -> Path:
    """Writes the rootfs into ``dest`` (created if missing) and returns it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    for rel, mode in DIRS.items():
        d = dest / rel
        d.mkdir(exist_ok=True)
        os.chmod(d, mode)
    os.chown(dest / "home/app", APP_UID, APP_GID)
    shutil.copyfile(BUSYBOX, dest / "bin/busybox")
    os.chmod(dest / "bin/busybox", 0o755)
    for rel in applets():
        link = dest / rel
        if rel == "bin/busybox" or link.is_symlink() or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text(PASSWD)
    (dest / "etc/group").write_text(GROUP)
    for name in ("etc/passwd", "etc/group"):
        os.chmod(dest / name, 0o644)
    return dest


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = MTIME
    info.uname = info.gname = ""
    return info


def build_busybox_tar(path: Path) -> Path:
    """Writes the busybox rootfs as a plain tar at ``path`` (reproducible) and returns it."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="box-busybox-") as tmp:
        root = build_busybox_rootfs(Path(tmp) / "rootfs")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
            tf.add(root, arcname=".", filter=_normalise)
    return path
