"""Hostile archives at the `box load` level: manifests that point outside the archive,
`../` in layer paths, links out of the archive, blobs whose digest does not match, a bad
layer after a good one. Each is refused naming the file at fault, and the store and the
host are left exactly as they were."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.images.load import load, open_source
from runtime.images.sources import LoadError
from runtime.images.store import ImageStore
from tests.conftest import Box
from tests.support.images import top_layer

LAYER = top_layer()
DIFF_ID = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def _tar(files: dict[str, bytes | tuple[str, str]]) -> bytes:
    """name -> bytes (a file) or ("sym"|"hard", target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, body in files.items():
            ti = tarfile.TarInfo(name)
            if isinstance(body, tuple):
                ti.type = tarfile.SYMTYPE if body[0] == "sym" else tarfile.LNKTYPE
                ti.linkname = body[1]
                tf.addfile(ti)
            else:
                ti.size = len(body)
                tf.addfile(ti, io.BytesIO(body))
    return buf.getvalue()


def _docker(config_path: str, layer_paths: list[str], files: dict, config: bytes | None = None,
            tags: list[str] | None = None) -> dict:
    cfg = config or _config([DIFF_ID] * len(layer_paths))
    out = {"manifest.json": json.dumps([{"Config": config_path, "RepoTags": tags or ["evil:1"],
                                         "Layers": layer_paths}]).encode()}
    if not config_path.startswith(("/", "..")):
        out[config_path] = cfg
    out.update(files)
    return out


def _oci(layer_blob: bytes, layer_digest: str, config: bytes | None = None,
         config_digest: str | None = None) -> dict:
    cfg = config or _config([DIFF_ID])
    cd = config_digest or "sha256:" + hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": cd, "size": len(cfg)},
                           "layers": [{"digest": layer_digest, "size": len(layer_blob)}]}).encode()
    md = "sha256:" + hashlib.sha256(manifest).hexdigest()
    return {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [
            {"digest": md, "size": len(manifest),
             "annotations": {"org.opencontainers.image.ref.name": "evil:1"}}]}).encode(),
        f"blobs/sha256/{md[7:]}": manifest,
        f"blobs/sha256/{cd[7:]}": cfg,
        f"blobs/sha256/{layer_digest[7:]}": layer_blob,
    }


def hostile(sentinel: str) -> dict[str, tuple[dict, str]]:
    """case -> (archive files, text the error must contain)."""
    good_digest = "sha256:" + hashlib.sha256(LAYER).hexdigest()
    wrong = "sha256:" + "0" * 64
    evil_layer = _tar({"../escape": b"x"})
    return {
        "config-outside": (_docker("../../etc/passwd", ["l/layer.tar"], {"l/layer.tar": LAYER}),
                           "'../../etc/passwd' leaves the archive"),
        "config-absolute": (_docker(f"{sentinel}/victim", ["l/layer.tar"], {"l/layer.tar": LAYER}),
                            f"absolute path '{sentinel}/victim'"),
        "layer-dotdot": (_docker("c.json", ["../l/layer.tar"], {"l/layer.tar": LAYER}),
                         "'../l/layer.tar' leaves the archive"),
        "layer-dotdot-inner": (_docker("c.json", ["l/../../x/layer.tar"], {"l/layer.tar": LAYER}),
                               "leaves the archive"),
        "layer-symlink-out": (_docker("c.json", ["l/layer.tar"],
                                      {"l/layer.tar": ("sym", "../../../../etc/passwd")}),
                              "leaves the archive"),
        "layer-symlink-absolute": (_docker("c.json", ["l/layer.tar"],
                                           {"l/layer.tar": ("sym", f"{sentinel}/victim")}),
                                   "link to absolute path"),
        "layer-missing": (_docker("c.json", ["l/layer.tar"], {}),
                          "l/layer.tar: not in the archive"),
        "legacy-diff-id-mismatch": (_docker("c.json", ["l/layer.tar"],
                                            {"l/layer.tar": _tar({"other": b"y"})}),
                                    f"does not match the config's diff_id {DIFF_ID}"),
        "layer-unsafe-entry": (_docker("c.json", ["l/layer.tar"], {"l/layer.tar": evil_layer},
                                       config=_config(
                                           ["sha256:" + hashlib.sha256(evil_layer).hexdigest()])),
                               "l/layer.tar: unsafe archive entry '../escape'"),
        "oci-layer-digest-mismatch": (_oci(LAYER + b"\0" * 512, good_digest),
                                      f"blobs/sha256/{good_digest[7:]}: content does not match"),
        "oci-config-digest-mismatch": (_oci(LAYER, good_digest, config_digest=wrong),
                                       f"blobs/sha256/{wrong[7:]}: content does not match"),
        "oci-bad-digest-syntax": (_oci(LAYER, "sha256:../../../etc/passwd"),
                                  "malformed digest"),
        "not-an-archive": ({"hello.txt": b"hi"}, "no manifest.json or index.json"),
    }


def _snapshot(path: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1)
                  for p in path.rglob("*"))


@pytest.mark.parametrize("case", sorted(hostile("/x")))
def test_hostile_load_is_refused_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "victim").write_text("original\n")
    files, words = hostile(str(sentinel))[case]
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar(files))
    store = ImageStore(tmp_path / "root")
    src = open_source(str(archive), str(tmp_path / "spool"))
    try:
        with pytest.raises(LoadError) as err:
            load(store, src)
    finally:
        src.close()
    msg = str(err.value)
    assert words in msg and "\n" not in msg
    assert (sentinel / "victim").read_text() == "original\n"
    leftovers = [p for p in _snapshot(tmp_path / "root") if p[1] != -1 and ".lock" not in p[0]]
    assert leftovers == []  # no layer, blob, tar-split, repositories.json or temp file


def test_a_bad_second_image_leaves_the_first_uncommitted(
        tmp_path: Path, make_box: Callable[[Path, Path], Box]) -> None:
    good_cfg = _config([DIFF_ID])
    bad_layer = _tar({"z": b"z"})
    manifest = [{"Config": "good.json", "RepoTags": ["good:1"], "Layers": ["a/layer.tar"]},
                {"Config": "bad.json", "RepoTags": ["bad:1"], "Layers": ["b/layer.tar"]}]
    archive = tmp_path / "two.tar"
    archive.write_bytes(_tar({"manifest.json": json.dumps(manifest).encode(),
                              "good.json": good_cfg, "a/layer.tar": LAYER,
                              "bad.json": _config(["sha256:" + "1" * 64]),
                              "b/layer.tar": bad_layer}))
    box = make_box(tmp_path / "root", tmp_path / "run")
    proc = box("load", "-i", str(archive))
    assert proc.returncode == 1
    assert "b/layer.tar" in proc.stderr and "does not match" in proc.stderr
    assert box.ok("images", "-q") == ""
    layers = tmp_path / "root/image/layers"
    assert not layers.exists() or os.listdir(layers) == []


def test_oversized_metadata_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    archive.write_bytes(_tar({"manifest.json": b"[" + b" " * (9 << 20) + b"]"}))
    src = open_source(str(archive), str(tmp_path / "spool"))
    try:
        with pytest.raises(LoadError, match="manifest.json: metadata file larger than"):
            load(ImageStore(tmp_path / "root"), src)
    finally:
        src.close()
