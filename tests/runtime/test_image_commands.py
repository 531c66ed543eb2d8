"""`box images` (--digests, --filter), `history`, `image prune`, `system df`, `export`,
`inspect IMAGE`, `rmi` with shared layers, and the image config a container records."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.support.images import REF, build_layered_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cmds") / "layered.tar"
    build_layered_archive(path)
    return path


@pytest.fixture
def box(tmp_path: Path, archive: Path, busybox_tar: Path,
        make_box: Callable[[Path, Path], Box]) -> Box:
    b = make_box(tmp_path / "root", tmp_path / "run")
    b.ok("load", "-i", str(archive))
    b.ok("import", str(busybox_tar), "busybox")  # shares its one layer with REF's base
    return b


def layer_dirs(box: Box) -> list[str]:
    return sorted(n for n in os.listdir(box.root / "image/layers") if len(n) == 64)


def test_images_filters_and_columns(box: Box) -> None:
    lines = box.ok("images").splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert box.ok("images", "--digests").splitlines()[0].split()[:3] == \
        ["REPOSITORY", "TAG", "DIGEST"]
    fmt = ["--format", "{{.Repository}}:{{.Tag}}"]
    assert box.ok("images", *fmt, "--filter", "reference=test/*") == f"{REF}\n"
    assert box.ok("images", *fmt, "--filter", "reference=busy*") == "busybox:latest\n"
    assert box.ok("images", *fmt, "--filter", "label=org.example.layered") == f"{REF}\n"
    assert box.ok("images", *fmt, "--filter", "label=org.example.layered=no") == ""
    # the loaded image was created in 2024, the import now
    assert box.ok("images", *fmt, "--filter", "before=busybox") == f"{REF}\n"
    assert box.ok("images", *fmt, "--filter", f"since={REF}") == "busybox:latest\n"
    assert box.ok("images", *fmt, "--filter", "dangling=true") == ""
    box.ok("tag", "busybox", REF)  # moves the tag: the layered image is dangling now
    assert box.ok("images", *fmt, "--filter", "dangling=true") == "<none>:<none>\n"
    bad = box("images", "--filter", "colour=red")
    assert bad.returncode == 1 and "invalid filter 'colour'" in bad.stderr


def test_history_rows(box: Box) -> None:
    out = box.ok("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", REF)
    rows = [r.split("|") for r in out.splitlines()]
    image_short = box.inspect(REF, "{{.Id}}")[7:19]
    assert [r[0] for r in rows] == [image_short, "<missing>", "<missing>"]
    assert [r[1] for r in rows] == ["CMD [...]", "ADD hello.txt; RUN rm /bin/vi", "busybox base"]
    assert rows[0][2] == "0B" and rows[1][2] == "23B" and rows[2][2].endswith("MB")
    assert box.ok("history", "-q", REF).split() == [image_short, "<missing>", "<missing>"]


def test_shared_base_is_stored_once_and_rmi_keeps_it_for_the_other_image(box: Box) -> None:
    base, top = json.loads(box.inspect(REF, "{{json .RootFS.Layers}}"))
    assert json.loads(box.inspect("busybox", "{{json .RootFS.Layers}}")) == [base]
    assert layer_dirs(box) == sorted([base[7:], top[7:]])
    df = box.ok("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Size}}")
    images_row = df.splitlines()[0].split("|")
    sizes = {d: json.loads((box.root / f"image/layers/{d[7:]}.json").read_text())["size"]
             for d in (base, top)}
    from runtime.format.human import human_size

    assert images_row == ["Images", "2", human_size(sum(sizes.values()))]  # base once
    layered_id = box.inspect(REF, "{{.Id}}")
    out = box.ok("rmi", REF)
    assert out.splitlines() == [f"Untagged: {REF}", f"Deleted: {layered_id}", f"Deleted: {top}"]
    assert layer_dirs(box) == [base[7:]]
    assert box.ok("run", "--rm", "busybox", "echo", "still") == "still\n"


def test_image_prune(box: Box) -> None:
    layered_id = box.inspect(REF, "{{.Id}}")
    box.ok("tag", "busybox", REF)  # dangling now
    cid = box.ok("create", "busybox", "true").strip()
    out = box.ok("image", "prune", "-f")
    lines = out.splitlines()
    assert lines[0] == "Deleted Images:" and f"deleted: {layered_id}" in lines
    assert lines[-1].startswith("Total reclaimed space: ") and lines[-1] != \
        "Total reclaimed space: 0B"
    # -a would remove unused tagged images, but busybox is used by a container
    assert box.ok("image", "prune", "-a", "-f") == "Total reclaimed space: 0B\n"
    box.ok("rm", cid)
    out = box.ok("image", "prune", "-a", "-f")
    assert "untagged: busybox:latest" in out and "untagged: test/layered:v1" in out
    assert box.ok("images", "-q") == "" and layer_dirs(box) == []


def test_prune_asks_without_force(box: Box) -> None:
    box.ok("tag", "busybox", REF)
    proc = subprocess.run([BOX, "image", "prune"], input="n\n", capture_output=True,
                          text=True, env=box.env, timeout=60)
    assert "Are you sure you want to continue? [y/N]" in proc.stdout
    assert len(box.ok("images", "-q").split()) == 2


def test_export_running_and_stopped(box: Box, tmp_path: Path) -> None:
    before = {p for p in os.listdir("/tmp") if p.startswith("box-export-")}
    cid = box.ok("run", "-d", REF, "sh", "-c", "echo made > /made.txt; sleep 30").strip()
    box.ok("exec", cid, "sh", "-c", "test -f /made.txt || sleep 1")
    out = tmp_path / "fs.tar"
    box.ok("export", "-o", str(out), cid)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
        assert tf.extractfile("made.txt").read() == b"made\n"
        assert tf.extractfile("hello.txt").read() == b"hello from layer 2\n"
    assert "bin/busybox" in names and "bin/vi" not in names  # the whiteout holds
    assert "home/new.txt" in names and "home/app" not in names  # so does the opaque dir
    assert not any(n.startswith("proc/") for n in names)
    box.ok("rm", "-f", cid)
    cid = box.ok("create", "busybox", "true").strip()
    data = subprocess.run([BOX, "export", cid], capture_output=True, env=box.env,
                          timeout=60, check=True).stdout
    assert "bin/sh" in tarfile.open(fileobj=io.BytesIO(data)).getnames()
    assert "box-export" not in Path("/proc/mounts").read_text()
    assert {p for p in os.listdir("/tmp") if p.startswith("box-export-")} <= before


def test_image_config_is_recorded_in_the_container(box: Box) -> None:
    cid = box.ok("create", REF).strip()
    cfg = json.loads(box.ok("inspect", cid))[0]["Config"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /hello.txt"]
    assert cfg["StopSignal"] == "SIGUSR1" and cfg["WorkingDir"] == "/home"
    assert "GREETING=from-config" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.layered": "yes"}
    img = json.loads(box.ok("image", "inspect", REF))[0]
    assert img["RootFS"]["Layers"] == json.loads(box.inspect(REF, "{{json .RootFS.Layers}}"))
    assert img["Architecture"] == "amd64" and img["Os"] == "linux"
