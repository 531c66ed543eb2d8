"""`box push` / `pull` / `login` / `logout` against a real docker-registry on loopback
(distribution 2.8), through a recording proxy: round trip into an empty root and run,
layer reuse, cross-repository mounts, an upload resumed after a dropped connection, a
multi-arch index, an OCI manifest written by skopeo, a corrupted blob, htpasswd auth."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.support.images import EXPECTED_OUTPUT, REF, build_layered_archive
from tests.support.registry import Proxy, Registry, registry

pytestmark = pytest.mark.slow  # a real registry per test


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reg") / "layered.tar"
    build_layered_archive(path)
    return path


@pytest.fixture
def reg() -> Iterator[Registry]:
    with registry() as r:
        yield r


@pytest.fixture
def proxy(reg: Registry) -> Iterator[Proxy]:
    p = Proxy(("127.0.0.1", reg.port))
    yield p
    p.close()


@pytest.fixture
def named_box(tmp_path: Path, make_box: Callable[[Path, Path], Box],
              monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Box]:
    """A root under ``tmp_path/<name>``; every root of a test shares one BOX_CONFIG."""
    monkeypatch.setenv("BOX_CONFIG", str(tmp_path / "config"))
    return lambda name: make_box(tmp_path / name / "root", tmp_path / name / "run")


@pytest.fixture
def src_box(named_box: Callable[[str], Box], archive: Path) -> Box:
    box = named_box("src")
    box.ok("load", "-i", str(archive))
    return box


@pytest.fixture
def dst_box(named_box: Callable[[str], Box]) -> Box:
    return named_box("dst")


def blob_digests(box: Box, ref: str) -> list[str]:
    layers = box.root / "image" / "layers"
    out = []
    for d in json.loads(box.inspect(ref, "{{json .RootFS.Layers}}")):
        meta = json.loads((layers / f"{d[7:]}.json").read_text())
        out += list(meta["compressed"])
    return out


def test_push_then_pull_into_an_empty_root_and_run(src_box: Box, dst_box: Box,
                                                  proxy: Proxy) -> None:
    target = f"{proxy.host}/team/layered:v1"
    src_box.ok("tag", REF, target)
    out = src_box.ok("push", target)
    assert out.startswith(f"The push refers to repository [{proxy.host}/team/layered]\n")
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"v1: digest: sha256:[0-9a-f]{64} size: \d+", last), last
    digest = last.split()[2]
    assert len(proxy.requests("PATCH")) == 2  # two layers, each one chunk
    assert src_box.inspect(target, "{{json .RepoDigests}}") == json.dumps(
        [f"{proxy.host}/team/layered@{digest}"])

    pulled = dst_box.ok("pull", target)
    assert pulled.splitlines() == ["v1: Pulling from team/layered", f"Digest: {digest}",
                                   f"Status: Downloaded newer image for {target}", target]
    assert dst_box.inspect(target, "{{.Id}}") == src_box.inspect(REF, "{{.Id}}")
    assert dst_box.ok("run", "--rm", target) == EXPECTED_OUTPUT
    assert dst_box.ok("run", "--rm", f"{proxy.host}/team/layered@{digest}", "cat",
                      "/hello.txt") == "hello from layer 2\n"
    rows = dst_box.ok("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
    assert rows == f"{proxy.host}/team/layered v1 {digest}\n"
    # pulled again: nothing downloaded, docker's "up to date"
    gets = len(proxy.requests("GET", "/blobs/"))
    assert "Status: Image is up to date for" in dst_box.ok("pull", target)
    assert len(proxy.requests("GET", "/blobs/")) == gets + 1  # the config only
    pulls = dst_box.ok("events", "--since", "1h", "--until", "0s", "--filter", "event=pull",
                       "--format", "{{.Type}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    assert pulls.splitlines() == [f"image {target} {proxy.host}/team/layered"] * 2


def test_second_push_reuses_layers_and_other_repo_mounts_them(src_box: Box,
                                                              proxy: Proxy) -> None:
    first, second = f"{proxy.host}/a/layered:v1", f"{proxy.host}/b/layered:v1"
    src_box.ok("tag", REF, first)
    src_box.ok("tag", REF, second)
    src_box.ok("push", first)
    proxy.seen.clear()
    src_box.ok("push", first)
    assert proxy.requests("PATCH") == [] and proxy.requests("POST") == []
    assert len(proxy.requests("HEAD", "/v2/a/layered/blobs/")) == 3  # two layers + config
    proxy.seen.clear()
    src_box.ok("push", second)
    mounts = proxy.requests("POST", "mount=")
    assert len(mounts) == 2 and all("from=a%2Flayered" in m.path for m in mounts)
    assert proxy.requests("PATCH") == []  # no layer bytes sent again
    for d in blob_digests(src_box, REF):
        req = urllib.request.Request(f"http://{proxy.host}/v2/b/layered/blobs/{d}", method="HEAD")
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 200


def test_upload_resumes_at_the_registrys_offset(src_box: Box, dst_box: Box, proxy: Proxy,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOX_UPLOAD_CHUNK_SIZE", str(128 << 10))
    proxy.cut_patch = 3  # the third chunk's connection is dropped before the registry sees it
    target = f"{proxy.host}/resume/layered:v1"
    src_box.ok("tag", REF, target)
    src_box.ok("push", target)
    patches = [s for s in proxy.requests("PATCH") if s.forwarded]
    dropped = [s for s in proxy.requests("PATCH") if not s.forwarded]
    assert len(dropped) == 1
    assert len(proxy.requests("GET", "/blobs/uploads/")) == 1  # asked where to resume
    sizes = {d: json.loads(p.read_text())["compressed"][d]["size"]
             for p in (src_box.root / "image/layers").glob("*.json")
             for d in json.loads(p.read_text())["compressed"]}
    assert sum(s.length for s in patches) == sum(sizes.values())  # nothing sent twice
    assert max(sizes.values()) > 2 * (128 << 10)  # the base layer took several chunks
    dst_box.ok("pull", target)
    assert dst_box.ok("run", "--rm", target) == EXPECTED_OUTPUT


def test_multi_arch_index_and_an_oci_manifest(src_box: Box, dst_box: Box, reg: Registry,
                                              archive: Path) -> None:
    # skopeo pushes the image with an OCI manifest (gzip layers)
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--format", "oci",
                    "--dest-tls-verify=false", f"docker-archive:{archive}",
                    f"docker://{reg.host}/oci/layered:v1"], check=True, timeout=120)
    req = urllib.request.Request(f"http://{reg.host}/v2/oci/layered/manifests/v1",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req) as resp:
        manifest = resp.read()
        assert json.loads(manifest)["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # an index with another platform first: box must pick linux/amd64
    mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": mdigest, "size": len(manifest),
                             "platform": {"os": "linux", "architecture": "s390x"}},
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": mdigest, "size": len(manifest),
                             "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    put = urllib.request.Request(f"http://{reg.host}/v2/oci/layered/manifests/multi", data=index,
                                 method="PUT", headers={
                                     "Content-Type": "application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(put) as resp:
        assert resp.status == 201
    out = dst_box.ok("pull", f"{reg.host}/oci/layered:multi")
    assert f"Digest: sha256:{hashlib.sha256(index).hexdigest()}" in out
    assert dst_box.ok("run", "--rm", f"{reg.host}/oci/layered:multi") == EXPECTED_OUTPUT
    dst_box.ok("pull", f"{reg.host}/oci/layered:v1")  # the plain OCI manifest too
    assert dst_box.ok("run", "--rm", f"{reg.host}/oci/layered:v1", "cat", "/hello.txt") \
        == "hello from layer 2\n"


def test_a_corrupted_blob_is_refused_and_nothing_is_kept(src_box: Box, dst_box: Box,
                                                        reg: Registry) -> None:
    target = f"{reg.host}/bad/layered:v1"
    src_box.ok("tag", REF, target)
    src_box.ok("push", target)
    def blob_file(d: str) -> Path:
        return reg.workdir / f"data/docker/registry/v2/blobs/sha256/{d[7:9]}/{d[7:]}/data"

    small = min(blob_digests(src_box, REF), key=lambda d: blob_file(d).stat().st_size)
    data = blob_file(small)
    raw = data.read_bytes()
    data.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))  # same size, other content
    proc = dst_box("pull", target)
    assert proc.returncode == 1
    assert small in proc.stderr and "does not match" in proc.stderr
    assert dst_box.ok("images", "-q") == ""
    layers = dst_box.root / "image/layers"
    assert not layers.exists() or list(layers.iterdir()) == []  # no layer, no staging
    assert list((dst_box.root / "image/tmp").iterdir()) == []  # no downloaded blob


def test_login_with_htpasswd_basic_auth(tmp_path: Path, archive: Path,
                                        named_box: Callable[[str], Box]) -> None:
    box = named_box("auth")
    box.ok("load", "-i", str(archive))
    with registry(users={"alice": "s3cret-pw"}) as reg:
        target = f"{reg.host}/private/layered:v1"
        box.ok("tag", REF, target)
        denied = box("push", target)
        assert denied.returncode == 1 and "box login" in denied.stderr
        wrong = subprocess.run([BOX, "login", "-u", "alice", "--password-stdin", reg.host],
                               input="nope\n", capture_output=True, text=True, env=box.env)
        assert wrong.returncode == 1 and "incorrect username or password" in wrong.stderr
        assert not (tmp_path / "config/config.json").exists()
        ok = subprocess.run([BOX, "login", "-u", "alice", "--password-stdin", reg.host],
                            input="s3cret-pw\n", capture_output=True, text=True, env=box.env)
        assert ok.returncode == 0 and ok.stdout == "Login Succeeded\n"
        assert "s3cret-pw" not in ok.stdout + ok.stderr
        cfg_file = tmp_path / "config/config.json"
        assert oct(cfg_file.stat().st_mode & 0o777) == "0o600"
        auth = json.loads(cfg_file.read_text())["auths"][reg.host]["auth"]
        assert base64.b64decode(auth) == b"alice:s3cret-pw"
        push = box("push", target)
        assert push.returncode == 0, push.stderr
        assert "s3cret-pw" not in push.stdout + push.stderr
        other = named_box("other")
        other.ok("pull", target)
        assert other.ok("run", "--rm", target) == EXPECTED_OUTPUT
        assert box.ok("logout", reg.host) == f"Removing login credentials for {reg.host}\n"
        assert json.loads(cfg_file.read_text())["auths"] == {}
        assert box.ok("logout", reg.host) == f"Not logged in to {reg.host}\n"
        assert "box login" in other("pull", target).stderr


def test_bearer_token_flow(src_box: Box, named_box: Callable[[str], Box], reg: Registry) -> None:
    from tests.support.registry import TokenGate

    gate = TokenGate(reg.host, {"bob": "tok-pw"})
    try:
        target = f"{gate.host}/tok/layered:v1"
        src_box.ok("tag", REF, target)
        denied = src_box("push", target)
        assert denied.returncode == 1  # anonymous tokens carry no scope
        login = subprocess.run([BOX, "login", "-u", "bob", "--password-stdin", gate.host],
                               input="tok-pw", capture_output=True, text=True, env=src_box.env)
        assert login.returncode == 0, login.stderr
        src_box.ok("push", target)
        scopes = [r["scopes"] for r in gate.token_requests if r["user"] == "bob"]
        assert ["repository:tok/layered:pull,push"] in scopes
        assert all(r["service"] == "box-test-registry" for r in gate.token_requests)
        other = named_box("tokpull")
        other.ok("pull", target)  # same BOX_CONFIG: bob's credentials
        assert other.ok("run", "--rm", target) == EXPECTED_OUTPUT
        assert ["repository:tok/layered:pull"] in [r["scopes"] for r in gate.token_requests]
    finally:
        gate.close()
