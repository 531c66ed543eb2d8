"""Sources on real files: the registry's crash safety, fingerprints, discovery and its
symlink rule, metadata from config.v2.json, and the reader across restarts, rotation and
gzip (in-process: a Reader, a Registry, acknowledgements by hand)."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

import pytest

from formats.jsonfile.writer import JsonFileWriter, compress_file
from formats.labels import LabelWhitelist
from shipper.enrich import MetadataCache
from shipper.sinks.base import Record
from shipper.sources.checkpoint import Registry, RegistryError, write_atomic
from shipper.sources.fingerprint import fingerprint_fd, gzip_head, same_content
from shipper.sources.paths import Discovery, glob_prefix, meta_from_path
from shipper.sources.reader import Reader, ReaderOptions
from tests.support.shipper_harness import make_container

T0 = 1_714_558_272_000_000_000


def test_registry_roundtrip_atomic_and_only_forward(tmp_path: Path):
    path = str(tmp_path / "reg.json")
    reg = Registry(path)
    reg.update(1, 2, "/a", "1f:abc", 100, 120)
    reg.update(1, 2, "/a", "1f:abc", 50, 60)  # an older ack arriving late: ignored
    reg.save()
    again = Registry(path)
    again.load()
    e = again.get(1, 2, "1f:abc")
    assert (e.resume, e.acked, e.done) == (100, 120, False)
    assert again.get(1, 2, "1f:other") is None  # same inode, other content: a new file
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    Path(path).write_text("{not json")
    with pytest.raises(RegistryError, match="corrupt"):
        Registry(path).load()


def test_registry_keeps_a_bounded_number_of_finished_entries(tmp_path: Path):
    reg = Registry(str(tmp_path / "r.json"), keep_done_per_dir=3)
    for i in range(10):
        reg.update(1, i, f"/d/{i}", f"1:{i}", 10, 10, done=True)
        time.sleep(0.001)
    assert sorted(e.path for e in reg.entries.values()) == ["/d/7", "/d/8", "/d/9"]


def test_write_atomic_replaces_whole(tmp_path: Path):
    target = tmp_path / "f"
    write_atomic(str(target), b"one")
    write_atomic(str(target), b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path) == ["f"]


def test_fingerprint_is_the_first_line_and_survives_gzip(tmp_path: Path):
    p = tmp_path / "x-json.log"
    w = JsonFileWriter(str(p))
    fd = os.open(p, os.O_RDONLY)
    try:
        assert fingerprint_fd(fd) is None  # nothing whole yet
        w.write_line("stdout", b"first\n", T0)
        fp = fingerprint_fd(fd)
        w.write_line("stdout", b"second\n", T0 + 1)
        assert fingerprint_fd(fd) == fp  # stable while the file grows
    finally:
        os.close(fd)
        w.close()
    os.rename(p, str(p) + ".1")
    compress_file(str(p) + ".1", T0)
    head = gzip_head(str(p) + ".1.gz")
    assert head is not None and same_content(fp, head)


def test_discovery_layouts_globs_and_the_symlink_rule(tmp_path: Path):
    root = tmp_path / "root"
    live = make_container(root, "a" * 64, "web")
    live.write_bytes(b"")
    pods = tmp_path / "pods" / "ns_pod_uid" / "app"
    pods.mkdir(parents=True)
    (pods / "0.log").write_bytes(b"")
    secret = tmp_path / "secret.log"
    secret.write_bytes(b"")
    evil = root / "containers" / ("b" * 64)
    evil.mkdir()
    os.symlink(secret, evil / f"{'b' * 64}-json.log")  # points outside every root
    inside = root / "containers" / ("c" * 64)
    inside.mkdir()
    os.symlink(live, inside / f"{'c' * 64}-json.log")  # points inside: allowed
    disc = Discovery([str(root)], [str(tmp_path / "pods" / "*" / "*" / "*.log")])
    found = sorted(f.path for f in disc.scan())
    assert found == sorted([str(live), str(inside / f"{'c' * 64}-json.log"), str(pods / "0.log")])
    assert disc.refused_links == 1
    assert glob_prefix("/var/log/pods/*/*/*.log") == "/var/log/pods"
    meta = meta_from_path(str(pods / "0.log"))
    assert (meta.name, meta.labels) == ("app", {"namespace": "ns", "pod": "pod"})
    for name in ("x.log.1", "x.log.2.gz", "x.log.2", "x.log.3.gz", "x.log.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in Discovery.rotated(str(tmp_path / "x.log"))] == [
        "x.log.1", "x.log.2", "x.log.3.gz"]


def test_metadata_reloaded_on_change_and_kept_after_removal(tmp_path: Path):
    root = tmp_path / "root"
    make_container(root, "d" * 64, "web", image="nginx", labels={"app": "shop", "secret": "s",
                                                                 "io.k8s.pod": "p"})
    d = str(root / "containers" / ("d" * 64))
    cache = MetadataCache(LabelWhitelist(["app", "io.k8s.*"]), keep_for=0.2)
    meta = cache.get(d)
    assert (meta.id, meta.name, meta.image) == ("d" * 64, "web", "nginx")
    assert meta.labels == {"app": "shop", "io.k8s.pod": "p"}
    make_container(root, "d" * 64, "renamed", image="nginx")
    assert cache.get(d).name == "renamed"
    shutil.rmtree(d)
    assert cache.get(d).name == "renamed"  # removed: its last lines keep the name
    time.sleep(0.3)
    assert cache.expire() == 1 and cache.get(d).name == ""


def _drain(reader: Reader, rounds: int = 50) -> list[Record]:
    """Read until nothing more comes, acknowledging everything as it goes."""
    out: list[Record] = []
    for _ in range(rounds):
        reader.rescan()
        batch: list[Record] = []
        reader.read_round(batch, 1 << 30)
        for t in reader.tailers.values():
            t.next_poll = 0
        reader.acknowledge(reader.checkpoints())
        reader.reap()
        out += batch
        if not batch and not any(t.rotated and not t.closed for t in reader.tailers.values()):
            break
    return out


def _reader(root: Path, reg: Registry) -> Reader:
    return Reader(Discovery([str(root)]), reg, MetadataCache(), ReaderOptions(host="h"))


def test_restart_resumes_after_the_last_acknowledged_line(tmp_path: Path):
    root = tmp_path / "root"
    path = make_container(root, "e" * 64, "web")
    w = JsonFileWriter(str(path))
    for i in range(100):
        w.write_line("stdout", f"line {i}\n".encode(), T0 + i)
    reg = Registry(str(tmp_path / "reg.json"))
    first = _drain(_reader(root, reg))
    assert [r.message for r in first] == [f"line {i}" for i in range(100)]
    reg.save()
    for i in range(100, 150):
        w.write_line("stdout", f"line {i}\n".encode(), T0 + i)
    w.close()
    reg2 = Registry(str(tmp_path / "reg.json"))
    reg2.load()
    second = _drain(_reader(root, reg2))
    assert [r.message for r in second] == [f"line {i}" for i in range(100, 150)]
    assert second[0].uid.split("-")[:3] == first[0].uid.split("-")[:3]  # same file identity


def test_gzip_of_a_read_file_is_skipped_and_of_a_half_read_one_finished(tmp_path: Path):
    root = tmp_path / "root"
    cid = "f" * 64
    path = make_container(root, cid, "web")
    reg = Registry(str(tmp_path / "reg.json"))
    reader = _reader(root, reg)
    reader.rescan()  # the shipper runs before the container logs: it reads all of it
    w = JsonFileWriter(str(path), max_size=2000, max_file=4, compress=True)
    for i in range(20):
        w.write_line("stdout", f"a{i:03d}".encode() + b"-" * 80 + b"\n", T0 + i)
        if i == 10:
            w._wait_compressor()
            got = _drain(reader)
    got += _drain(reader)
    # the shipper is down while the container logs on, rotates and compresses
    for i in range(20, 40):
        w.write_line("stdout", f"b{i:03d}".encode() + b"-" * 80 + b"\n", T0 + i)
    w.close()
    reader.close()
    reg.save()
    names = sorted(os.listdir(root / "containers" / cid))
    assert any(n.endswith(".gz") for n in names), names
    reg2 = Registry(str(tmp_path / "reg.json"))
    reg2.load()
    rest = _drain(_reader(root, reg2))
    msgs = [r.message[:4] for r in got + rest]
    assert len(msgs) == len(set(msgs)), "a line came twice"
    assert sorted(msgs) == [f"a{i:03d}" for i in range(20)] + [f"b{i:03d}" for i in range(20, 40)]
    with gzip.open(sorted((root / "containers" / cid).glob("*.gz"))[0]) as f:
        assert f.read(2) == b'{"'
