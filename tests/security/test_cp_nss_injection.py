"""Attack (CVE-2019-14271): an image whose /etc/nsswitch.conf names a module of its own
(``passwd: evil files``) and ships ``libnss_evil.so.2``. A ``box cp`` or ``box export``
helper that looks up owner names inside the container's root makes glibc dlopen that
library into a process running as host root; its constructor leaves a marker file."""

from __future__ import annotations

import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.security.conftest import gcc, imported_rootfs
from tests.support.busybox import build_busybox_rootfs

EVIL = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    int fd = open(MARKER, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) { write(fd, "ran\n", 4); close(fd); }
}
"""


@pytest.fixture
def evil_image(box: Box, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(image name, marker path): the marker is written wherever the library runs."""
    marker = f"/tmp/box-nss-evil-{uuid.uuid4().hex[:8]}"
    lib = gcc(tmp_path, "libnss_evil.so.2", EVIL, "-shared", "-fPIC", f'-DMARKER="{marker}"')
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "etc/nsswitch.conf").write_text("passwd: evil files\ngroup: evil files\n")
    for d in ("lib", "lib64", "usr/lib", "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
        (rootfs / d / "libnss_evil.so.2").write_bytes(lib.read_bytes())
    (rootfs / "data").mkdir()
    (rootfs / "data/file").write_text("payload\n")
    os.chown(rootfs / "data/file", 1000, 1000)
    with imported_rootfs(box, rootfs, "evil") as name:
        yield name, marker
    Path(marker).unlink(missing_ok=True)


def _ran(box: Box, cid: str, marker: str) -> list[str]:
    """Where the marker showed up: the host, the container's own layer."""
    found = []
    if os.path.exists(marker):
        found.append("host")
    if (box.root / "overlay2" / cid / "diff" / marker.lstrip("/")).exists():
        found.append("container")
    return found


def test_cp_out_of_a_running_container_loads_no_container_library(
        box: Box, evil_image: tuple[str, str], tmp_path: Path) -> None:
    image, marker = evil_image
    cid = box.ok("run", "-d", image, "sleep", "60").strip()
    box.ok("cp", "-a", f"{cid}:/data", str(tmp_path / "out"))
    assert (tmp_path / "out/file").read_text() == "payload\n"
    assert os.stat(tmp_path / "out/file").st_uid == 1000  # -a keeps numeric owners
    assert _ran(box, cid, marker) == []


def test_cp_into_a_running_container_loads_no_container_library(
        box: Box, evil_image: tuple[str, str], tmp_path: Path) -> None:
    image, marker = evil_image
    cid = box.ok("run", "-d", image, "sleep", "60").strip()
    src = tmp_path / "in.txt"
    src.write_text("in\n")
    os.chown(src, 1000, 1000)
    box.ok("cp", "-a", str(src), f"{cid}:/tmp/in.txt")
    box.ok("cp", str(src), f"{cid}:/tmp/in2.txt")
    assert box.ok("exec", cid, "stat", "-c", "%u %n", "/tmp/in.txt", "/tmp/in2.txt").split(
        "\n")[:2] == ["1000 /tmp/in.txt", "0 /tmp/in2.txt"]
    assert _ran(box, cid, marker) == []


def test_cp_with_a_stopped_container_loads_no_container_library(
        box: Box, evil_image: tuple[str, str], tmp_path: Path) -> None:
    image, marker = evil_image
    cid = box.ok("create", image, "true").strip()
    box.ok("cp", f"{cid}:/data/file", str(tmp_path / "file"))
    (tmp_path / "up").write_text("up\n")
    box.ok("cp", str(tmp_path / "up"), f"{cid}:/data/up")
    assert _ran(box, cid, marker) == []


def test_export_loads_no_container_library(box: Box, evil_image: tuple[str, str],
                                           tmp_path: Path) -> None:
    image, marker = evil_image
    cid = box.ok("run", "-d", image, "sleep", "60").strip()
    out = tmp_path / "export.tar"
    box.ok("export", "-o", str(out), cid)
    with tarfile.open(out) as tf:
        member = tf.getmember("data/file")
        assert (member.uid, member.uname) == (1000, "")
        assert tf.extractfile(member).read() == b"payload\n"
    assert _ran(box, cid, marker) == []


def test_cp_helper_is_in_the_containers_pid_namespace_with_its_caps(
        box: Box, tmp_path: Path) -> None:
    """Confined like exec: /proc/self names a pid of the container's pid namespace, and
    without DAC_OVERRIDE (--cap-drop ALL) root cannot write into app's 0755 home."""
    cid = box.ok("run", "-d", "--cap-drop", "ALL", "busybox", "sleep", "60").strip()
    box.ok("cp", f"{cid}:/proc/self", str(tmp_path / "self"))
    assert int(os.readlink(tmp_path / "self")) < 100
    (tmp_path / "f").write_text("x\n")
    proc = box("cp", str(tmp_path / "f"), f"{cid}:/home/app/f")
    assert proc.returncode != 0 and "ermission denied" in proc.stderr
    other = box.ok("run", "-d", "busybox", "sleep", "60").strip()
    box.ok("cp", str(tmp_path / "f"), f"{other}:/home/app/f")
