"""`box load` / `box save` against skopeo (a real peer): our own legacy docker-archive,
skopeo's docker-archive, OCI layout (dir and tar, gzip and zstd), oci-archive and dir:;
every one is loaded into an empty root and run. skopeo reads what `box save` writes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.support.images import CHECK, CHECK_OUTPUT, EXPECTED_OUTPUT, REF, build_layered_archive

pytestmark = pytest.mark.slow  # every archive format loaded and run


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", "--insecure-policy", *args], check=True,
                          capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("archives")
    own = d / "own.tar"
    build_layered_archive(own)
    src = f"docker-archive:{own}"
    skopeo("copy", "-q", src, f"docker-archive:{d / 'skopeo-docker.tar'}:{REF}")
    skopeo("copy", "-q", src, f"oci:{d / 'oci-dir'}:v1")
    skopeo("copy", "-q", "--dest-compress-format", "zstd", src, f"oci:{d / 'oci-zstd'}:v1")
    skopeo("copy", "-q", src, f"oci-archive:{d / 'oci-archive.tar'}:{REF}")
    skopeo("copy", "-q", src, f"dir:{d / 'dir'}")
    with tarfile.open(d / "oci-layout.tar", "w") as tf:  # an OCI layout handed over as a tar
        for name in sorted(os.listdir(d / "oci-dir")):
            tf.add(d / "oci-dir" / name, arcname=name)
    return {"own": own, "skopeo-docker": d / "skopeo-docker.tar", "oci-dir": d / "oci-dir",
            "oci-zstd": d / "oci-zstd", "oci-archive": d / "oci-archive.tar",
            "dir": d / "dir", "oci-layout-tar": d / "oci-layout.tar"}


@pytest.fixture
def empty_box(tmp_path: Path, make_box: Callable[[Path, Path], Box]) -> Box:
    return make_box(tmp_path / "root", tmp_path / "run")


def _loaded_id(out: str) -> str:
    line = out.strip().splitlines()[-1]
    if line.startswith("Loaded image ID: "):
        return line.removeprefix("Loaded image ID: ")
    return line.removeprefix("Loaded image: ")


@pytest.mark.parametrize("kind", ["own", "skopeo-docker", "oci-dir", "oci-zstd", "oci-archive",
                                  "dir", "oci-layout-tar"])
def test_each_format_loads_and_runs(archives: dict[str, Path], empty_box: Box, kind: str) -> None:
    out = empty_box.ok("load", "-i", str(archives[kind]))
    ref = _loaded_id(out)
    if kind in ("own", "skopeo-docker"):
        assert out == f"Loaded image: {REF}\n"
    assert empty_box.ok("run", "--rm", ref) == EXPECTED_OUTPUT
    assert empty_box.ok("run", "--rm", ref, "sh", "-c", CHECK) == CHECK_OUTPUT
    # the image config is honoured and recorded
    cfg = json.loads(empty_box.ok("image", "inspect", ref))[0]["Config"]
    assert cfg["ExposedPorts"] == {"8080/tcp": {}} and cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGUSR1"
    layers = sorted(os.listdir(empty_box.root / "image" / "layers"))
    assert len([n for n in layers if len(n) == 64]) == 2  # two layers, extracted once each


def test_load_from_stdin_and_again_is_a_no_op(archives: dict[str, Path], empty_box: Box) -> None:
    data = archives["own"].read_bytes()
    proc = subprocess.run([BOX, "load"], input=data, capture_output=True, env=empty_box.env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"Loaded image: {REF}\n".encode()
    before = {p: os.stat(empty_box.root / "image" / "layers" / p).st_ino
              for p in os.listdir(empty_box.root / "image" / "layers")}
    assert empty_box.ok("load", "-i", str(archives["skopeo-docker"])) == f"Loaded image: {REF}\n"
    after = {p: os.stat(empty_box.root / "image" / "layers" / p).st_ino
             for p in os.listdir(empty_box.root / "image" / "layers")}
    assert after == before  # same layers: nothing extracted again
    assert not os.listdir(empty_box.root / "image" / "tmp")  # the stdin spool is gone


def test_save_is_read_by_skopeo_and_loads_back(archives: dict[str, Path], empty_box: Box,
                                               tmp_path: Path,
                                               make_box: Callable[[Path, Path], Box]) -> None:
    empty_box.ok("load", "-i", str(archives["own"]))
    image_id = empty_box.inspect(REF, "{{.Id}}")
    out = tmp_path / "saved.tar"
    empty_box.ok("save", "-o", str(out), REF)
    names = tarfile.open(out).getnames()
    assert {"index.json", "manifest.json", "oci-layout", "repositories"} <= set(names)
    # layers are stored uncompressed under their diff_id, rebuilt byte for byte
    diff_ids = json.loads(empty_box.inspect(REF, "{{json .RootFS.Layers}}"))
    with tarfile.open(out) as tf:
        for d in diff_ids:
            blob = tf.extractfile(f"blobs/sha256/{d[7:]}").read()
            assert "sha256:" + hashlib.sha256(blob).hexdigest() == d
    for transport in ("oci-archive", "docker-archive"):
        info = json.loads(skopeo("inspect", f"{transport}:{out}"))
        assert info["Layers"] == diff_ids, transport
        assert info["Labels"] == {"org.example.layered": "yes"}
    docker_manifest = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert docker_manifest[0]["RepoTags"] == [REF]
    # skopeo copies it on (what docker load would read), and box loads both back
    skopeo("copy", "-q", f"docker-archive:{out}", f"oci:{tmp_path / 'copied'}:v1")
    other = make_box(tmp_path / "root2", tmp_path / "run2")
    assert other.ok("load", "-i", str(out)) == f"Loaded image: {REF}\n"
    assert other.inspect(REF, "{{.Id}}") == image_id  # the same config, the same ID
    assert other.ok("run", "--rm", REF) == EXPECTED_OUTPUT
    assert "Loaded image ID" in other.ok("load", "-i", str(tmp_path / "copied"))


def test_save_to_stdout_and_refusals(archives: dict[str, Path], empty_box: Box,
                                     tmp_path: Path) -> None:
    empty_box.ok("load", "-i", str(archives["own"]))
    with open(tmp_path / "out.tar", "wb") as f:
        proc = subprocess.run([BOX, "save", REF], stdout=f, env=empty_box.env,
                              timeout=60)
    assert proc.returncode == 0
    assert "manifest.json" in tarfile.open(tmp_path / "out.tar").getnames()
    bad = empty_box("save", "-o", str(tmp_path / "nope.tar"), "nope:missing")
    assert bad.returncode == 1 and "nope:missing" in bad.stderr
    assert not (tmp_path / "nope.tar").exists()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
