"""Bind mounts, named and anonymous volumes, tmpfs, a read-only root with writable
volumes, ``box volume``; bad specs refused up front."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.volumes import parse_mount, parse_volume
from tests.conftest import Box


def test_bind_mount_rw_ro_and_missing_host_dir_created(box: Box, tmp_path: Path) -> None:
    src = tmp_path / "data"
    src.mkdir()
    (src / "in.txt").write_text("from host\n")
    created = tmp_path / "made" / "by" / "box"
    out = box.ok("run", "--rm", "-v", f"{src}:/data", "-v", f"{src}:/ro:ro", "-v",
                 f"{created}:/new", "busybox", "sh", "-c",
                 "cat /data/in.txt; echo out > /data/out.txt; echo x > /ro/x 2>&1 || echo "
                 "ro-refused;"
                 " touch /new/file")
    assert out.splitlines() == ["from host", "ro-refused"]
    assert (src / "out.txt").read_text() == "out\n"
    assert (created / "file").exists()
    # nothing mounted on the host
    assert str(src) not in Path("/proc/mounts").read_text()


def test_named_volume_outlives_rm_and_container_layer_does_not(box: Box) -> None:
    box.ok("run", "--name", "writer", "-v", "testvol:/vol", "busybox", "sh", "-c",
           "echo kept > /vol/f; echo lost > /layer")
    box.ok("rm", "writer")
    out = box.ok("run", "--rm", "-v", "testvol:/vol", "busybox", "sh", "-c",
                 "cat /vol/f; cat /layer 2>/dev/null || echo no-layer")
    assert out.split() == ["kept", "no-layer"]
    view = json.loads(box.ok("volume", "inspect", "testvol"))[0]
    assert view["Mountpoint"] == str(box.root / "volumes" / "testvol" / "_data")
    assert (box.root / "volumes/testvol/_data/f").read_text() == "kept\n"
    box.ok("volume", "rm", "testvol")
    assert not (box.root / "volumes" / "testvol").exists()


def test_empty_volume_gets_the_images_content_copied_up(box: Box) -> None:
    out = box.ok("run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd")
    assert out.startswith("root:x:0:0")
    assert (box.root / "volumes/etcvol/_data/passwd").exists()
    out = box.ok("run", "--rm", "--mount", "type=volume,source=nocopy,target=/etc,volume-nocopy",
                 "busybox", "ls", "/etc")
    assert out.split() == ["hostname", "hosts", "resolv.conf"]  # nothing copied, etc files on top
    box.ok("volume", "rm", "etcvol", "nocopy")


def test_mount_flag_tmpfs_and_read_only_root(box: Box, tmp_path: Path) -> None:
    (tmp_path / "cfg").write_text("v=1\n")
    out = box.ok("run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m,mode=1777",
                 "--mount", f"type=bind,source={tmp_path / 'cfg'},target=/etc/app.cfg,readonly",
                 "-v", "rovol:/data", "busybox", "sh", "-c",
                 "cat /etc/app.cfg; touch /root/x 2>/dev/null || echo root-ro; "
                 "touch /data/ok && echo vol-rw; touch /scratch/ok && echo tmpfs-rw; "
                 "grep ' /scratch ' /proc/mounts")
    lines = out.splitlines()
    assert lines[:4] == ["v=1", "root-ro", "vol-rw", "tmpfs-rw"]
    assert "tmpfs" in lines[4] and "size=1024k" in lines[4]
    box.ok("volume", "rm", "rovol")


def test_volume_commands_and_in_use_refused(box: Box) -> None:
    assert box.ok("volume", "create", "--label", "team=obs", "vol1").strip() == "vol1"
    assert "vol1" in box.ok("volume", "ls", "-q").split()
    cid = box.ok("create", "-v", "vol1:/v", "busybox", "true").strip()
    proc = box("volume", "rm", "vol1")
    assert proc.returncode == 1 and "in use" in proc.stderr and cid in proc.stderr
    assert "vol1" not in box.ok("volume", "prune", "-f")  # named volumes stay without --all
    box.ok("rm", cid)
    assert "vol1" in box.ok("volume", "ls", "-q", "--filter", "dangling=true").split()
    assert "vol1" in box.ok("volume", "prune", "-a", "-f")
    assert "vol1" not in box.ok("volume", "ls", "-q").split()


def test_anonymous_volume_removed_with_rm_v(box: Box) -> None:
    cid = box.ok("run", "-d", "-v", "/anon", "busybox", "touch", "/anon/x").strip()
    assert box.ok("wait", cid).strip() == "0"
    mounts = json.loads(box.inspect(cid, "{{json .Mounts}}"))
    assert mounts[0]["Type"] == "volume" and len(mounts[0]["Name"]) == 64
    path = Path(mounts[0]["Source"])
    assert (path / "x").exists()
    box.ok("rm", "-v", cid)
    assert not path.exists()


@pytest.mark.parametrize("flag, spec, value", [
    ("-v", "relative:path", "path"),
    ("-v", "/a:/b:/c:/d", "/a:/b:/c:/d"),
    ("-v", "bad name!:/x", "bad name!"),
    ("-v", "/src:/dst:rx", "rx"),
    ("-v", "/src:", "/src:"),
    ("-v", "/:/", "/"),
    ("--mount", "type=bind,source=/nonexistent-box-src,target=/x", "/nonexistent-box-src"),
    ("--mount", "type=nfs,target=/x", "nfs"),
    ("--mount", "type=volume,src=v", "target"),
    ("--mount", "type=volume,target=/x,colour=blue", "colour"),
    ("--tmpfs", "relative", "relative"),
    ("--tmpfs", "/t:size=lots", "lots"),
])
def test_malformed_mounts_are_125_and_leave_nothing(box: Box, flag: str, spec: str, value: str
                                                    ) -> None:
    vols = box.root / "volumes"
    before = sorted(os.listdir(vols)) if vols.exists() else []
    for verb in ("run", "create"):
        proc = box(verb, flag, spec, "busybox", "true")
        assert proc.returncode == 125, proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and value in proc.stderr, proc.stderr
    assert box.ok("ps", "-aq") == ""
    assert (sorted(os.listdir(vols)) if vols.exists() else []) == before


def test_parse_forms() -> None:
    assert parse_volume("/h:/c:ro")["RW"] is False
    assert parse_volume("name:/c")["Type"] == "volume"
    assert parse_volume("/c")["Source"] == "" and parse_volume("/c:ro")["RW"] is False
    m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700")
    assert m["Data"] == "size=1048576,mode=700" and m["Destination"] == "/t"
