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
                       "stat -c '%n %u:%g %a' /owned /owned/top.txt /owned/inner/x.txt "
                       "/kept /kept/top.txt /kept/inner/x.txt")
    # BuildKit: --chown overrides every entry's owner and the directories it creates for
    # the destination; --chmod leaves archive modes alone
    assert got.splitlines() == ["/owned 1234:5678 755", "/owned/top.txt 1234:5678 640",
                                "/owned/inner/x.txt 1234:5678 640", "/kept 0:0 755",
                                "/kept/top.txt 42:42 640", "/kept/inner/x.txt 42:42 640"]


def test_copy_chown_owns_the_destination_directories_it_creates(build_box: Box,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("f\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nCOPY --chown=1234:5678 f.txt /made/deeper/\n"
        "COPY --chown=1234:5678 f.txt /tmp/\n")
    image = build(build_box, tmp_path, "-q").strip()
    got = build_box.ok("run", "--rm", image, "stat", "-c", "%n %u:%g",
                       "/made", "/made/deeper", "/made/deeper/f.txt", "/tmp", "/tmp/f.txt")
    # fsutil's MkdirAll chowns what it makes; a directory that was there keeps its owner
    assert got.splitlines() == ["/made 1234:5678", "/made/deeper 1234:5678",
                                "/made/deeper/f.txt 1234:5678", "/tmp 0:0", "/tmp/f.txt 1234:5678"]


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


PLAIN_APP = """\
FROM busybox AS build
ENV X=1
COPY a.txt /a
RUN echo out; echo err >&2; sleep 0.2; echo two
FROM build
RUN cat /a
"""


def test_progress_plain_prints_buildkits_plain_shape(build_box: Box, tmp_path: Path) -> None:
    import re

    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text(PLAIN_APP)
    proc = build_box("build", "--progress", "plain", "-t", "test/plain:1", str(tmp_path),
                     timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # as docker: the progress goes to stderr
    err = proc.stderr
    heads = re.findall(r"^#(\d+) (\[.*|exporting to image)$", err, re.M)
    assert [h[1] for h in heads] == [
        "[internal] load build definition from Dockerfile", "[internal] load .dockerignore",
        "[internal] load build context",
        "[build 1/3] FROM docker.io/library/busybox:latest", "[build 2/3] COPY a.txt /a",
        "[build 3/3] RUN echo out; echo err >&2; sleep 0.2; echo two",
        "[stage-1 1/1] RUN cat /a", "exporting to image"]
    assert [int(h[0]) for h in heads] == list(range(1, 9))
    assert re.search(r"^#6 \d+\.\d{3} out\n#6 \d+\.\d{3} err\n#6 (0\.[2-9]|[1-9])\d*\.?\d* two\n"
                     r"#6 DONE \d+\.\ds$", err, re.M), err
    assert re.search(r"^#7 \d+\.\d{3} hello\n#7 DONE \d+\.\ds\n\n#8 exporting", err, re.M)
    image_id = build_box.inspect("test/plain:1", "{{.Id}}")
    assert f"#8 writing image {image_id} done\n" in err
    assert "#8 naming to docker.io/test/plain:1 done\n" in err
    assert "Step " not in err and "Successfully" not in err
    again = build_box("build", "--progress=plain", str(tmp_path), timeout=180).stderr
    assert re.findall(r"^#(\d+) CACHED$", again, re.M) == ["5", "6", "7"]
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo before; exit 3\n")
    failed = build_box("build", "--progress", "plain", str(tmp_path), timeout=180)
    assert failed.returncode == 3
    assert re.search(r'^#5 \[2/2\] RUN echo before; exit 3\n#5 \d+\.\d{3} before\n'
                     r'#5 ERROR: process "/bin/sh -c echo before; exit 3" did not complete '
                     r"successfully: exit code: 3$", failed.stderr, re.M), failed.stderr
    assert failed.stderr.endswith("returned a non-zero code: 3\n")


def test_progress_plain_names_steps_with_variables_substituted(build_box: Box,
                                                               tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox\nARG V=3\nENV W=hello\nRUN echo $W-$V "$W" $UNSET\n')
    plain = build_box("build", "--progress", "plain", str(tmp_path), timeout=180)
    assert plain.returncode == 0, plain.stderr
    assert '] RUN echo hello-3 "hello" $UNSET\n' in plain.stderr, plain.stderr
    assert "hello-3 hello\n" in plain.stderr  # what the step printed
    classic = build_box("build", "--no-cache", str(tmp_path), timeout=180)
    assert 'Step 4/4 : RUN echo $W-$V "$W" $UNSET\n' in classic.stdout, classic.stdout


def test_progress_default_is_classic_and_unknown_values_are_named(build_box: Box,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nENV A=1\n")
    out = build(build_box, tmp_path, "--progress", "auto")
    assert out.splitlines()[1] == "Step 1/2 : FROM busybox"
    assert out.splitlines()[-1].startswith("Successfully built ")
    proc = build_box("build", "--progress", "tty", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1
    assert '"tty" for "--progress" flag' in proc.stderr
    assert "DOCKER_BUILDKIT=0" in build_box.ok("build", "--help")
