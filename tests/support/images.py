"""A two-layer test image written by our own code as a legacy ``docker save`` archive:
the busybox rootfs as the base layer, and a second layer that adds a file, deletes a
base file with a whiteout and makes ``/home`` opaque. skopeo converts it to the other
formats in the interop tests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.support.busybox import MTIME, build_busybox_tar

REF = "test/layered:v1"
CONFIG = {
    "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from-config"],
    "Cmd": ["/bin/sh", "-c", "echo $GREETING; pwd; cat /hello.txt"],
    "WorkingDir": "/home",
    "Labels": {"org.example.layered": "yes"},
    "ExposedPorts": {"8080/tcp": {}},
    "Volumes": {"/data": {}},
    "StopSignal": "SIGUSR1",
    "Healthcheck": {"Test": ["CMD-SHELL", "test -f /hello.txt"], "Interval": 1_000_000_000},
}
# What `box run IMAGE` prints: Env and WorkingDir from the config, the file from layer 2.
EXPECTED_OUTPUT = "from-config\n/home\nhello from layer 2\n"
# Checks a container runs: the whiteout hid bin/vi, the opaque dir hid home/app.
CHECK = "test ! -e /bin/vi && ls /home && test -x /bin/busybox && echo ok"
CHECK_OUTPUT = "new.txt\nok\n"


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime = MTIME
    if data is None:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        tf.addfile(ti)
        return
    ti.size = len(data)
    ti.mode = mode
    tf.addfile(ti, io.BytesIO(data))


def top_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "hello.txt", b"hello from layer 2\n")
        _add(tf, "bin")
        _add(tf, "bin/.wh.vi", b"")
        _add(tf, "home")
        _add(tf, "home/.wh..wh..opq", b"")
        _add(tf, "home/new.txt", b"new\n")
    return buf.getvalue()


def build_layered_archive(path: Path, ref: str = REF, workdir: Path | None = None) -> dict:
    """Writes the legacy docker-archive at ``path``; returns its image ID and diff_ids."""
    path = Path(path)
    base = build_busybox_tar((workdir or path.parent) / "base-layer.tar").read_bytes()
    layers = [base, top_layer()]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": CONFIG,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "busybox base"},
                    {"created": "2024-01-02T03:04:05Z",
                     "created_by": "ADD hello.txt; RUN rm /bin/vi"},
                    {"created": "2024-01-02T03:04:05Z", "created_by": "CMD [...]",
                     "empty_layer": True}],
    }, separators=(",", ":")).encode()
    image_hex = hashlib.sha256(config).hexdigest()
    v1_ids = [hashlib.sha256(d.encode() + b"v1").hexdigest() for d in diff_ids]
    name, tag = ref.rsplit(":", 1)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for v1, layer in zip(v1_ids, layers, strict=True):
            _add(tf, v1)
            _add(tf, f"{v1}/VERSION", b"1.0")
            _add(tf, f"{v1}/json", json.dumps({"id": v1}).encode())
            _add(tf, f"{v1}/layer.tar", layer)
        _add(tf, f"{image_hex}.json", config)
        _add(tf, "manifest.json", json.dumps([{
            "Config": f"{image_hex}.json", "RepoTags": [ref],
            "Layers": [f"{v1}/layer.tar" for v1 in v1_ids]}]).encode())
        _add(tf, "repositories", json.dumps({name: {tag: v1_ids[-1]}}).encode())
    return {"id": "sha256:" + image_hex, "diff_ids": diff_ids, "config": config}


def write_oci_layout(dest: Path, config: dict, layers: list[bytes], ref: str = "") -> str:
    """A minimal OCI image layout directory at ``dest`` holding one image: exactly the
    ``config`` given (no field added, so tests can leave out what the spec makes
    optional) and the uncompressed ``layers``. Returns the image ID (its config digest)."""
    dest = Path(dest)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **blob(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}
                   for layer in layers],
    }
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            **blob(json.dumps(manifest).encode())}
    if ref:
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    return "sha256:" + hashlib.sha256(config_bytes).hexdigest()


def diff_id(layer: bytes) -> str:
    return "sha256:" + hashlib.sha256(layer).hexdigest()
