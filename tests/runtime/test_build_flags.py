"""`box build`'s flags and forms that must not be accepted and ignored, on the real
kernel: ADD of an archive with --chown, COPY --exclude/--parents/--link, RUN
--mount=type=bind filtering and from=/source=/rw, --progress plain, and a base image
pulled from a registry."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.runtime.test_build import build


@pytest.fixture
def build_box(box: Box, monkeypatch: pytest.MonkeyPatch) -> Box:
    """Builds run without a network unless a test asks for one."""
    monkeypatch.setenv("BOX_DEFAULT_NETWORK", "none")
    return box


def _tar(path: Path, entries: dict[str, bytes], uid: int = 42) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o640, uid, uid
            tf.addfile(info, io.BytesIO(data))


def test_add_archive_chown_applies_to_extracted_files(build_box: Box, tmp_path: Path) -> None:
    _tar(tmp_path / "bundle.tar.gz", {"inner/x.txt": b"x\n", "top.txt": b"t\n"})
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nADD --chown=1234:5678 bundle.tar.gz /owned/\n"
        "ADD --chmod=700 bundle.tar.gz /kept/\n")
    image = build(build_box, tmp_path, "-q").strip()
    got = build_box.ok("run", "--rm", image, "sh", "-c",
                       "stat -c '%n %u:%g %a' /owned/top.txt /owned/inner/x.txt "
                       "/kept/top.txt /kept/inner/x.txt")
    # BuildKit: --chown overrides every entry's owner; --chmod leaves archive modes alone
    assert got.splitlines() == ["/owned/top.txt 1234:5678 640",
                                "/owned/inner/x.txt 1234:5678 640",
                                "/kept/top.txt 42:42 640", "/kept/inner/x.txt 42:42 640"]


def test_add_archive_with_a_whiteout_named_entry_is_refused(build_box: Box,
                                                            tmp_path: Path) -> None:
    _tar(tmp_path / "wh.tar.gz", {"d/keep.txt": b"k\n", "d/.wh.gone": b""})
    (tmp_path / "Dockerfile").write_text("FROM busybox\nADD wh.tar.gz /x/\n")
    proc = build_box("build", str(tmp_path), timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "'d/.wh.gone' is named like a layer whiteout" in proc.stderr, proc.stderr


def test_missing_base_image_is_pulled_from_its_registry(build_box: Box, tmp_path: Path) -> None:
    from tests.support.registry import registry

    with registry() as reg:
        base = f"127.0.0.1:{reg.port}/base/busybox:1"
        build_box.ok("tag", "busybox", base)
        build_box.ok("push", base)
        build_box.ok("rmi", base)
        (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /out\n")
        out = build(build_box, tmp_path, "-t", "test/pulled:1")
        assert "1: Pulling from base/busybox" in out
        assert f"Status: Image is up to date for {base}" in out  # busybox's blobs are here
        assert build_box.inspect(base, "{{.Id}}").startswith("sha256:")
        assert build_box.ok("run", "--rm", "test/pulled:1", "cat", "/out") == "built\n"
        (tmp_path / "Dockerfile").write_text(f"FROM 127.0.0.1:{reg.port}/base/nope:1\n")
        proc = build_box("build", str(tmp_path), timeout=120)
        assert proc.returncode != 0 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"pulling 127.0.0.1:{reg.port}/base/nope:1: " in proc.stderr
        assert "Traceback" not in proc.stderr
    (tmp_path / "Dockerfile").write_text("FROM no-such-local-image\n")
    proc = build_box("build", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert "not found locally" in proc.stderr


def _files(box: Box, image: str, *dirs: str) -> list[str]:
    out = box.ok("run", "--rm", image, "sh", "-c",
                 f"find {' '.join(dirs)} -print | sort")
    return out.split()


def test_copy_exclude_matches_below_the_source_and_wildcard_matches(build_box: Box,
                                                                    tmp_path: Path) -> None:
    for rel in ("src/a.txt", "src/b.log", "src/sub/c.log", "src/sub/d.txt", "hom1.txt",
                "homer.md", "homdir/x.txt", "homdir/y.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nCOPY --exclude=*.log --exclude=sub/d.txt src/ /ex/\n"
        "COPY --exclude=*.txt hom* /h/\n")
    image = build(build_box, tmp_path, "-q").strip()
    # "*.log" is anchored at the copied directory: b.log goes, sub/c.log stays
    assert _files(build_box, image, "/ex", "/h") == [
        "/ex", "/ex/a.txt", "/ex/sub", "/ex/sub/c.log", "/h", "/h/homer.md", "/h/y.md"]
    (tmp_path / "src" / "b.log").write_text("changed, but excluded")
    again = build(build_box, tmp_path)
    assert again.count(" ---> Using cache") == 2  # an excluded file is not in the checksum


def test_copy_parents_keeps_directories_below_the_pivot(build_box: Box, tmp_path: Path) -> None:
    for rel in ("src/a.txt", "src/sub/d.txt", "src/sub/e.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "src" / "sub").chmod(0o750)
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nCOPY --parents src/sub/*.txt src/./a.txt /p/\n")
    image = build(build_box, tmp_path, "-q").strip()
    assert _files(build_box, image, "/p") == ["/p", "/p/a.txt", "/p/src", "/p/src/sub",
                                              "/p/src/sub/d.txt"]
    assert build_box.ok("run", "--rm", image, "stat", "-c", "%a", "/p/src/sub") == "750\n"


def test_copy_link_writes_an_independent_layer(build_box: Box, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("f\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN mkdir -m 700 /data /real && echo old > /data/old && "
        "ln -s /real /ln\n"
        "COPY --link f.txt /data/f.txt\nCOPY --link f.txt /ln/f.txt\n")
    image = build(build_box, tmp_path, "-q").strip()
    got = build_box.ok("run", "--rm", image, "sh", "-c",
                       "stat -c '%n %a %F' /data /ln; ls /data /ln /real")
    # the layers merge as docker's do: /data keeps old, with the linked layer's 0755;
    # the symlink /ln is not followed (the layer was written on an empty root)
    assert got.splitlines() == ["/data 755 directory", "/ln 755 directory", "/data:", "f.txt",
                                "old", "", "/ln:", "f.txt", "", "/real:"]


def test_run_bind_mounts_filter_the_context_and_discard_writes(build_box: Box,
                                                               tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("data\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("log\n")
    (tmp_path / ".dockerignore").write_text("secret.txt\nlogs\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS builder\nRUN mkdir /app && echo made > /app/out\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,target=/ctx ls /ctx > /listing\n"
        "RUN --mount=type=bind,target=/ctx,rw echo new > /ctx/new && rm /ctx/data.txt\n"
        "RUN --mount=type=bind,target=/ctx ls /ctx >> /listing\n"
        "RUN --mount=type=bind,from=builder,source=/app,target=/m,rw "
        "cat /m/out > /got && echo extra > /m/extra\n"
        "RUN --mount=type=bind,from=builder,source=app,target=/m ls /m >> /got\n"
        "RUN --mount=type=bind,target=/ro touch /ro/x 2>/dev/null || echo read-only >> /got\n")
    image = build(build_box, tmp_path, "-q").strip()
    listing = build_box.ok("run", "--rm", image, "cat", "/listing", "/got").splitlines()
    # .dockerignore'd files are absent; rw writes went nowhere (not into the context,
    # not into the next step's view, not into the stage)
    assert listing == ["Dockerfile", "data.txt", "Dockerfile", "data.txt", "made", "out",
                       "read-only"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".dockerignore", "Dockerfile", "data.txt", "logs", "secret.txt"]
    (tmp_path / "data.txt").write_text("changed\n")  # what the mount shows is in the key
    assert build(build_box, tmp_path).count(" ---> Using cache") == 1  # the builder's RUN
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS builder\nFROM busybox\n"
        "RUN --mount=type=bind,from=builder,source=/nope,target=/m true\n")
    proc = build_box("build", str(tmp_path), timeout=120)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Dockerfile:3: RUN --mount" in proc.stderr and "/nope" in proc.stderr
