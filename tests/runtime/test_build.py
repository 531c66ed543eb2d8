"""`box build` on the real kernel: images from Dockerfiles built on the busybox test
image, docker's output and cache rules, the instructions' effects seen by `box run`,
whiteouts in the layers, and what a failing RUN leaves (nothing)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import BOX, Box

APP = """\
ARG BASE=busybox
FROM ${BASE} AS build
ARG FLAVOUR
ENV GREETING=hi DIR=/app
WORKDIR $DIR
COPY src/ ./
RUN echo "${GREETING} ${FLAVOUR:-plain}" > out.txt
RUN <<EOF
echo one > /app/heredoc
rm /bin/vi
EOF

FROM busybox
COPY --from=build /app /app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out.txt /app/a.txt /app/heredoc; ls /app/sub"]
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("hello\n")
    (root / "src" / "sub" / "keep.txt").write_text("keep\n")
    (root / "src" / "sub" / "drop.log").write_text("drop\n")
    (root / ".dockerignore").write_text("src/**/*.log\n")
    (root / "Dockerfile").write_text(APP)
    return root


@pytest.fixture
def build_box(box: Box, monkeypatch: pytest.MonkeyPatch) -> Box:
    """Builds run without a network unless a test asks for one."""
    monkeypatch.setenv("BOX_DEFAULT_NETWORK", "none")
    return box


def build(box: Box, ctx: Path, *flags: str, ok: bool = True) -> str:
    proc = box("build", *flags, str(ctx), timeout=180)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def steps(out: str) -> list[str]:
    return re.findall(r"^Step \d+/\d+ : (.*)$", out, re.M)


def layer_names(box: Box, ref: str) -> list[list[str]]:
    """Every layer's entry names, bottom first, from `box save`."""
    raw = subprocess.run([BOX, "save", ref], capture_output=True, env=box.env,
                         check=True).stdout
    out = tarfile.open(fileobj=io.BytesIO(raw))
    manifest = json.load(out.extractfile("manifest.json"))
    return [tarfile.open(fileobj=out.extractfile(name)).getnames()
            for name in manifest[0]["Layers"]]


def test_multi_stage_build_runs_with_dockers_output(build_box: Box, ctx: Path) -> None:
    out = build(build_box, ctx, "-t", "test/app:1", "--build-arg", "FLAVOUR=mint")
    assert steps(out) == ["FROM ${BASE} AS build", "ARG FLAVOUR", "ENV GREETING=hi DIR=/app",
                          "WORKDIR $DIR", "COPY src/ ./",
                          'RUN echo "${GREETING} ${FLAVOUR:-plain}" > out.txt', "RUN <<EOF",
                          "FROM busybox", "COPY --from=build /app /app",
                          'ENTRYPOINT ["/bin/sh", "-c"]',
                          'CMD ["cat /app/out.txt /app/a.txt /app/heredoc; ls /app/sub"]']
    assert out.startswith("Sending build context to box ")
    assert re.search(r"^Step 1/11 : ", out, re.M)
    assert re.search(r"^ ---> Running in [0-9a-f]{12}\n", out, re.M)
    assert re.search(r"^Removing intermediate container [0-9a-f]{12}$", out, re.M)
    short = re.search(r"^Successfully built ([0-9a-f]{12})$", out, re.M).group(1)
    assert out.endswith(f"Successfully built {short}\nSuccessfully tagged test/app:1\n")
    assert build_box.inspect("test/app:1", "{{.Id}}")[7:19] == short
    # the .dockerignore kept drop.log out; ENV, ARG and the heredoc all took effect
    assert build_box.ok("run", "--rm", "test/app:1") == "hi mint\nhello\none\nkeep.txt\n"
    assert build_box.inspect("test/app:1", "{{json .Config.Entrypoint}}") == '["/bin/sh","-c"]'


def test_second_build_reuses_every_step_and_mtime_does_not_count(build_box: Box,
                                                                  ctx: Path) -> None:
    build(build_box, ctx, "-t", "test/cache:1", "--no-cache")
    again = build(build_box, ctx, "-t", "test/cache:1")
    assert again.count(" ---> Using cache") == 9  # every step but the two FROMs
    os.utime(ctx / "src" / "a.txt", (1, 1))  # metadata Docker's checksum leaves out
    mtime_only = build(build_box, ctx, "-t", "test/cache:1")
    assert mtime_only.count(" ---> Using cache") == 9
    assert mtime_only.splitlines()[-2] == again.splitlines()[-2]  # the same image ID
    (ctx / "src" / "a.txt").write_text("changed\n")
    changed = build(build_box, ctx)
    before, after = changed.split("Step 5/11 : COPY src/ ./", 1)
    assert before.count("Using cache") == 3  # ARG, ENV, WORKDIR
    assert "Using cache" not in after  # after the first miss everything rebuilds
    assert "Using cache" not in build(build_box, ctx, "--no-cache")


def test_failing_run_prints_output_and_code_and_leaves_nothing(build_box: Box,
                                                               tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN echo partial > /made && echo to-out && echo to-err >&2; exit 3\n")
    layers = build_box.root / "image" / "layers"
    before = sorted(os.listdir(layers))
    proc = build_box("build", str(tmp_path), timeout=120)
    assert proc.returncode == 3
    assert "to-out" in proc.stdout and "to-err" in proc.stderr
    assert proc.stderr.strip().endswith("returned a non-zero code: 3"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert build_box.ok("ps", "-aq") == ""
    assert sorted(os.listdir(layers)) == before
    assert os.listdir(build_box.root / "build" / "tmp") == []
    assert not [ln for ln in Path("/proc/mounts").read_text().splitlines()
                if str(build_box.root) in ln]
    assert os.listdir(build_box.root / "containers") == []


def test_bad_input_is_one_line_naming_file_line_and_instruction(build_box: Box,
                                                                tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN true\nFROBNICATE\n")
    proc = build_box("build", str(tmp_path))
    assert proc.returncode != 0
    assert proc.stderr == "box: Dockerfile:3: FROBNICATE: unknown instruction: FROBNICATE\n"
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=nope,target=/x true\n")
    proc = build_box("build", str(tmp_path))
    assert proc.stderr.startswith("box: Dockerfile:2: RUN --mount=type=nope,target=/x true: ")
    assert "type=nope is not supported" in proc.stderr
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY missing.txt /x\n")
    proc = build_box("build", str(tmp_path))
    assert proc.returncode == 1
    assert "Dockerfile:2: COPY missing.txt /x: COPY failed: file not found in build " \
           "context" in proc.stderr
    (tmp_path / "Dockerfile").write_text("FROM busybox\nADD https://example.com/x /x\n")
    proc = build_box("build", str(tmp_path))
    assert "is not supported: builds run without network" in proc.stderr
    assert build_box("build", str(tmp_path / "nope")).returncode == 1
    for proc in (build_box("build", "-f", str(tmp_path / "nope"), str(tmp_path)),):
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1


def test_whiteouts_become_oci_whiteouts(build_box: Box, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN rm /bin/vi && rm -rf /home && mkdir /home && echo x > /home/new\n")
    build(build_box, tmp_path, "-t", "test/wh:1")
    top = layer_names(build_box, "test/wh:1")[-1]
    assert "bin/.wh.vi" in top
    assert "home/.wh..wh..opq" in top and "home/new" in top
    assert not {"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"} & set(top)
    assert build_box.ok("run", "--rm", "test/wh:1", "sh", "-c",
                        "ls /home; test -e /bin/vi || echo gone") == "new\ngone\n"


def test_config_instructions_and_cmd_entrypoint_interplay(build_box: Box,
                                                          tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM busybox AS base\nCMD ["echo", "base"]\n'
        "FROM base\nENTRYPOINT echo entry\n"  # resets the base's CMD
        "EXPOSE 80 53/udp\nLABEL a=b c=\"d e\"\nVOLUME /data\nUSER 1000:1000\n"
        "STOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"
        'SHELL ["/bin/sh", "-ec"]\nONBUILD RUN echo later\nMAINTAINER someone\n')
    build(build_box, tmp_path, "-t", "test/cfg:1", "--label", "extra=1")
    cfg = json.loads(build_box.inspect("test/cfg:1", "{{json .Config}}"))
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo entry"]
    assert not cfg.get("Cmd")
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"a": "b", "c": "d e", "extra": "1"}
    assert cfg["Volumes"] == {"/data": {}}
    assert (cfg["User"], cfg["StopSignal"]) == ("1000:1000", "SIGINT")
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                  "Retries": 2}
    assert cfg["OnBuild"] == ["RUN echo later"]
    child = tmp_path / "child"  # the trigger runs in a child image's build
    child.mkdir()
    (child / "Dockerfile").write_text("FROM test/cfg:1\n")
    out = build(build_box, child)
    assert "# Executing 1 build trigger" in out and "later" in out


def test_copy_flags_add_tarball_target_and_quiet(build_box: Box, tmp_path: Path) -> None:
    (tmp_path / "f.sh").write_text("echo run\n")
    with tarfile.open(tmp_path / "bundle.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("inner/x.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"x\n"))
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS first\nCOPY --chown=1234:5678 --chmod=750 f.sh /opt/\n"
        "ADD bundle.tar.gz /unpacked/\nCOPY <<EOF /doc.txt\nfrom heredoc\nEOF\n"
        "FROM busybox AS second\nRUN false\n")
    out = build(build_box, tmp_path, "--target", "first", "-q")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out)  # -q: the ID only; `second` not built
    got = build_box.ok("run", "--rm", out.strip(), "sh", "-c",
                       "stat -c '%u:%g %a' /opt/f.sh; cat /unpacked/inner/x.txt /doc.txt")
    assert got == "1234:5678 750\nx\nfrom heredoc\n"


def test_run_mounts_cache_and_bind(build_box: Box, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("from context\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nARG N\n"
        "RUN --mount=type=cache,target=/cache echo $N >> /cache/runs && cat /cache/runs\n"
        "RUN --mount=type=bind,target=/ctx cat /ctx/data.txt > /copied\n")
    first = build(build_box, tmp_path, "--build-arg", "N=1", "-t", "test/mnt:1")
    second = build(build_box, tmp_path, "--build-arg", "N=2", "-t", "test/mnt:1")
    assert "1\n" in first and "1\n2\n" in second  # the cache dir outlived the first build
    assert build_box.ok("run", "--rm", "test/mnt:1", "sh", "-c",
                        "cat /copied; ls -d /cache /ctx 2>/dev/null | wc -l") == \
        "from context\n0\n"


@pytest.mark.slow
def test_built_image_pushes_to_the_registry(build_box: Box, ctx: Path) -> None:
    from tests.support.registry import registry

    build(build_box, ctx, "-t", "test/app:push")
    with registry() as reg:
        target = f"127.0.0.1:{reg.port}/team/app:1"
        build_box.ok("tag", "test/app:push", target)
        out = build_box.ok("push", target)
        assert re.search(r"1: digest: sha256:[0-9a-f]{64} size: \d+", out), out
        build_box.ok("rmi", target)
        build_box.ok("pull", target)
        assert build_box.ok("run", "--rm", target) == "hi plain\nhello\none\nkeep.txt\n"
