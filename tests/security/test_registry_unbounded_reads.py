"""Attack: a hostile (or hijacked) registry answers ``box pull`` with a manifest, config
or layer that never ends. box read manifests whole, and a layer until the server stopped
sending, checking size and digest only at the end: memory or the disk of the box root
filled before anything was refused. Reads are now bounded: a manifest (or any body read
whole) at moby's 4 MiB, a config at 8 MiB and its descriptor's size, a layer at its
descriptor's size; the digest is hashed as the bytes arrive; each refusal is one line
naming the digest (or the manifest).

A tiny registry on loopback (http.server) serves the hostile answers and counts what it
managed to send; the real docker-registry serves a blob with bytes appended on disk."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Box

EXTRA = 256 << 20  # what the hostile server offers beyond the descriptor's size
SLACK = 32 << 20  # socket buffers: what it may get out before box hangs up


def _layer() -> tuple[bytes, str]:
    """A gzip layer with one file, and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return gzip.compress(raw.getvalue()), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Hostile:
    """A registry on loopback serving one image, ``evil/app:v1``, with one part of it
    made hostile by ``mode``: "manifest" (an endless manifest), "config" and "layer"
    (the descriptor's bytes, then EXTRA more)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.layer, diff_id = _layer()
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": _digest(self.config), "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": _digest(self.layer), "size": len(self.layer)}]}).encode()
        self.sent = 0
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection does

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hostile.serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        body, endless = b"{}", False
        if h.path.endswith("/manifests/v1"):
            body, endless = self.manifest, self.mode == "manifest"
            ctype = "application/vnd.docker.distribution.manifest.v2+json"
        elif h.path.endswith("/blobs/" + _digest(self.config)):
            body, endless, ctype = self.config, self.mode == "config", "application/json"
        elif h.path.endswith("/blobs/" + _digest(self.layer)):
            body, endless, ctype = self.layer, self.mode == "layer", "application/octet-stream"
        elif h.path == "/v2/":
            ctype = "application/json"
        else:
            h.send_error(404)
            return
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.end_headers()
        try:
            if endless and self.mode == "manifest":  # a JSON string that never closes
                h.wfile.write(b'{"schemaVersion": 2, "x": "')
                self._junk(h, EXTRA)
            else:
                h.wfile.write(body)
                if endless:
                    self._junk(h, EXTRA)
        except OSError:
            pass  # box hung up: what we wanted

    def _junk(self, h: BaseHTTPRequestHandler, total: int) -> None:
        chunk = b"A" * (64 << 10)
        while total > 0:
            h.wfile.write(chunk)
            self.sent += len(chunk)
            total -= len(chunk)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[[str], Hostile]]:
    made: list[Hostile] = []

    def make(mode: str) -> Hostile:
        made.append(Hostile(mode))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _pull_refused(box: Box, ref: str) -> str:
    proc = box("pull", ref, timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert box("image", "inspect", ref).returncode == 1  # nothing committed
    tmp = box.root / "image" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []  # no half-downloaded blob kept
    return lines[0]


def test_an_endless_layer_is_cut_at_its_descriptors_size(box: Box, hostile) -> None:
    h = hostile("layer")
    line = _pull_refused(box, f"{h.host}/evil/app:v1")
    assert _digest(h.layer) in line and "larger than its descriptor" in line, line
    assert h.sent < SLACK, f"box read {h.sent} bytes past the descriptor's size"


def test_an_endless_config_is_cut_at_its_descriptors_size(box: Box, hostile) -> None:
    h = hostile("config")
    line = _pull_refused(box, f"{h.host}/evil/app:v1")
    assert _digest(h.config) in line and "larger than its descriptor" in line, line
    assert h.sent < SLACK, f"box read {h.sent} bytes past the descriptor's size"


def test_an_endless_manifest_is_cut_at_four_mib(box: Box, hostile) -> None:
    h = hostile("manifest")
    line = _pull_refused(box, f"{h.host}/evil/app:v1")
    assert "manifest for" in line and "evil/app:v1" in line and "4194304" in line, line
    assert h.sent < (4 << 20) + SLACK, f"box read {h.sent} bytes of a manifest"


def test_the_hostile_registry_serves_a_good_image_otherwise(box: Box, hostile) -> None:
    """The same server with nothing hostile: the refusals above are the bounds, not a
    broken fixture."""
    h = hostile("none")
    ref = f"{h.host}/evil/app:v1"
    assert "Downloaded newer image" in box.ok("pull", ref)
    layers = json.loads(box.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref))
    assert layers == json.loads(h.config)["rootfs"]["diff_ids"]
    box.ok("rmi", ref)


@pytest.mark.slow
def test_a_real_registry_blob_longer_than_its_descriptor(box: Box, tmp_path: Path,
                                                         make_box) -> None:
    """docker-registry serves what its storage holds: a layer with bytes appended on
    disk is announced longer than the manifest says and refused before it is read."""
    from tests.support.images import REF, build_layered_archive
    from tests.support.registry import registry

    archive = tmp_path / "layered.tar"
    build_layered_archive(archive)
    src = make_box(tmp_path / "src" / "root", tmp_path / "src" / "run")
    dst = make_box(tmp_path / "dst" / "root", tmp_path / "dst" / "run")
    src.ok("load", "-i", str(archive))
    with registry() as reg:
        target = f"{reg.host}/big/layered:v1"
        src.ok("tag", REF, target)
        src.ok("push", target)
        layers = src.root / "image" / "layers"
        digests = [d for diff in json.loads(src.inspect(REF, "{{json .RootFS.Layers}}"))
                   for d in json.loads((layers / f"{diff[7:]}.json").read_text())["compressed"]]
        blob = reg.workdir / f"data/docker/registry/v2/blobs/sha256/{digests[0][7:9]}" \
                             f"/{digests[0][7:]}/data"
        with open(blob, "ab") as f:
            f.write(b"\0" * (8 << 20))
        line = _pull_refused(dst, target)
        assert digests[0] in line and "descriptor says" in line, line
