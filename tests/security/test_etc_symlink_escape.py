"""Attack: an image whose ``/etc`` is a symlink to ``/root`` made ``box run`` create
``/root/hosts`` (and hostname, resolv.conf) on the host and bind-mount over them: the
paths were joined onto the root and the symlink followed by the host. They now resolve
inside the root (openat2 RESOLVE_IN_ROOT); a symlinked /proc, /sys or /dev is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.security.conftest import imported_rootfs
from tests.support.busybox import build_busybox_rootfs

HOST_FILES = [Path("/root/hosts"), Path("/root/hostname"), Path("/root/resolv.conf")]


def _rootfs(tmp_path: Path, link: str, target: str) -> Path:
    """The busybox rootfs with ``link`` replaced by a symlink to ``target``."""
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    victim = rootfs / link.strip("/")
    if victim.is_dir():
        for child in victim.iterdir():
            child.unlink()
        victim.rmdir()
    (rootfs / "root").mkdir(exist_ok=True)
    victim.symlink_to(target)
    return rootfs


def test_etc_symlink_to_root_stays_inside(box: Box, tmp_path: Path) -> None:
    if any(p.exists() for p in HOST_FILES):
        pytest.skip("the host has /root/hosts, hostname or resolv.conf: cannot tell ours apart")
    with imported_rootfs(box, _rootfs(tmp_path, "/etc", "/root"), "symlinked") as image:
        try:
            proc = box("run", "--rm", "--network", "none", image, "cat", "/etc/hostname")
            created = [str(p) for p in HOST_FILES if p.exists()]
            assert not created, f"box run created {created} on the host"
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.strip()  # the container's hostname, in the container's /root
        finally:
            for p in HOST_FILES:  # only ours: checked absent before the run
                if p.exists():
                    os.unlink(p)


@pytest.mark.parametrize("name", ["proc", "sys", "dev"])
def test_a_symlinked_kernel_filesystem_is_refused(box: Box, tmp_path: Path, name: str) -> None:
    with imported_rootfs(box, _rootfs(tmp_path, f"/{name}", "/tmp"), "symlinked") as image:
        proc = box("run", "--rm", "--network", "none", image, "true")
    assert proc.returncode == 125
    assert f"/{name}" in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
