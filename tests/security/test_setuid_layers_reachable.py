"""Attack (CVE-2021-41091): the box root and what it holds were 0755, so any local user
could walk into an image layer, a container's layer or a volume and run a setuid-root
file a container put there. The root is 0710 and layers, containers' layers and volumes
0700: another user reaches none of them."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Box

NOBODY = 65534


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A parent every user may traverse (pytest's own temp dirs are 0700, which would
    hide the problem)."""
    d = Path(tempfile.mkdtemp(prefix="perm-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _setuid_image_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("suid-shell")
        data = b"#!/bin/sh\nid\n"
        info.size, info.mode, info.uid, info.gid = len(data), 0o4755, 0, 0
        tf.addfile(info, io.BytesIO(data))
    return path


def _nobody_can_stat(path: str) -> bool:
    """Whether uid 65534 can reach ``path`` (in a forked child: the test stays root)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.stat(path)
            os._exit(0)
        except PermissionError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"probe as nobody failed ({code})"
    return code == 0


def test_other_users_reach_no_setuid_file(make_box: Callable[[Path, Path], Box],
                                          open_parent: Path, tmp_path: Path) -> None:
    box = make_box(open_parent / "root", open_parent / "run")
    box.ok("import", str(_setuid_image_tar(tmp_path / "suid.tar")), "suid")
    layer_files = list((open_parent / "root" / "image" / "layers").glob("*/suid-shell"))
    assert layer_files and layer_files[0].stat().st_mode & stat.S_ISUID
    cid = box.ok("create", "--network", "none", "suid", "/suid-shell").strip()
    diff = open_parent / "root" / "overlay2" / cid / "diff"
    shutil.copy2(layer_files[0], diff / "copied-suid")  # what a container can leave there
    box.ok("volume", "create", "vol")
    vol = open_parent / "root" / "volumes" / "vol" / "_data"
    shutil.copy2(layer_files[0], vol / "suid-in-volume")

    root_mode = (open_parent / "root").stat().st_mode & 0o7777
    assert root_mode in (0o700, 0o710), oct(root_mode)
    for d in ("image/layers", f"overlay2/{cid}", "volumes"):
        assert (open_parent / "root" / d).stat().st_mode & 0o7777 == 0o700, d
    for target in (layer_files[0], diff / "copied-suid", vol / "suid-in-volume"):
        assert not _nobody_can_stat(str(target)), f"uid {NOBODY} reaches {target}"
    box.ok("rm", cid)
    box.ok("volume", "rm", "vol")
    box.ok("rmi", "suid")


def test_an_older_root_is_tightened(make_box: Callable[[Path, Path], Box],
                                    open_parent: Path) -> None:
    root = open_parent / "root"
    (root / "image" / "layers").mkdir(parents=True)
    root.chmod(0o755)
    (root / "image" / "layers").chmod(0o755)
    box = make_box(root, open_parent / "run")
    box.ok("images")
    assert root.stat().st_mode & 0o7777 == 0o710
