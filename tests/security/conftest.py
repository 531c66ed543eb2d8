"""Repro material for the attacks: loop devices over files the test made, small
programs and libraries built with gcc, and images made of a rootfs the test wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.support.busybox import build_busybox_rootfs

SECRET = b"BOX-HOST-DISK-SECRET-0123456789\n"


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    """A host block device whose first bytes are SECRET (detached after the test)."""
    if shutil.which("losetup") is None:
        pytest.skip("losetup (util-linux) is not installed")
    backing = tmp_path / "disk.img"
    backing.write_bytes(SECRET * (1024 * 1024 // len(SECRET)))
    dev = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def gcc(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    """Compile ``source`` (C) to ``tmp_path/name``; skip if there is no compiler."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True,
                   capture_output=True)
    os.chmod(out, 0o755)
    return out


def busybox_with_probe(tmp_path: Path, name: str, source: str) -> Path:
    """The busybox rootfs (in ``tmp_path/rootfs``) with ``source`` built static at
    ``/NAME``: the image has no libc."""
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    shutil.copy(gcc(tmp_path, name, source, "-static"), rootfs / name)
    return rootfs


@contextmanager
def imported_rootfs(box: Box, rootfs: Path, prefix: str) -> Iterator[str]:
    """``rootfs`` imported as an image of its own, ``PREFIX-xxxxxxxx``; removed after."""
    tar = rootfs.parent / f"{rootfs.name}.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    box.ok("import", str(tar), name)
    try:
        yield name
    finally:
        box("rmi", "-f", name)
