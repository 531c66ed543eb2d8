"""Checks whose subject does not depend on the node's cgroup layout: the shipper on
Docker's root (json-file logs, partials, rotation, a SIGKILL mid-stream) and interop with
the real engine (save/load both ways, the same json-file log line for line). They run on
node 2, which has spare time while node 1 (systemd, the longer boot) sets the suite's
wall time; Docker writes the same logs and image archives with either cgroup driver.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.nodes.guest.common import box_inspect
from tests.nodes.guest.suite import BOX, BOXWATCH, Suite, engine, fetch, out, sh, wait_for

# -- the shipper on Docker's root ---------------------------------------------------------
LINES = 12000  # ~2.4 MB of json-file: two rotations at max-size=1m, all kept by max-file=3
LOGGER = (f"sleep 2; awk 'BEGIN {{ pad = sprintf(\"%0100d\", 0); "
          f"for (i = 1; i <= {LINES}; i++) {{ "
          "if (i % 10 == 0) print \"err \" i > \"/dev/stderr\"; else print \"out \" i \" \" pad; "
          "if (i == 5000) { s = \"\"; for (j = 0; j < 40000; j++) s = s \"L\"; print \"long \" s } "
          "if (i % 500 == 0) { fflush(); system(\"sleep 0.3\") } } }'")


def _shipped(path: Path, name: str) -> tuple[dict[str, list[str]], int]:
    """Per stream, the shipped messages in order, replays removed; and the replay count."""
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    seen: set[tuple[int, str, str]] = set()
    dups = 0
    for raw in path.read_bytes().splitlines():
        try:
            e = json.loads(raw)
        except ValueError:
            continue  # a line torn by the SIGKILL; its batch is sent again
        if e.get("container_name") != name:
            continue
        key = (e["time_ns"], e["stream"], e["message"])
        if key in seen:
            dups += 1
            continue
        seen.add(key)
        streams[e["stream"]].append(e["message"])
    return streams, dups


def shipper(ctx: dict[str, Any]) -> str:
    sink = Path("/tmp/shipped.ndjson")
    argv = [BOXWATCH, "shipper", "--root", "/var/lib/docker", "--sink", f"file={sink}",
            "--registry", "/tmp/shipper.registry", "--listen", "127.0.0.1:9181"]
    log = open("/tmp/shipper.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        wait_for("the shipper's /healthz", lambda: fetch("http://127.0.0.1:9181/healthz"), 60, 0.2)
        cid = out("docker", "run", "-d", "--name", "logger", "--log-opt", "max-size=1m",
                  "--log-opt", "max-file=3", "busybox", "sh", "-c", LOGGER)
        wait_for(
            "some lines shipped", lambda: sink.exists() and sink.stat().st_size > 200_000, 120, 0.2
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        running = engine(f"/containers/{cid}/json")["State"]["Running"]
        at_kill = sink.stat().st_size
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_for(
            "the logger's end",
            lambda: not engine(f"/containers/{cid}/json")["State"]["Running"],
            240,
        )
        logs = sh("docker", "logs", "logger", timeout=60)
        want = {"stdout": logs.stdout.split("\n")[:-1], "stderr": logs.stderr.split("\n")[:-1]}
        assert len(want["stdout"]) + len(want["stderr"]) == LINES + 1, (
            len(want["stdout"]),
            len(want["stderr"]),
        )

        def caught_up() -> bool:
            # a count of the raw lines first (cheap), the full parse only when it can pass
            if sink.read_bytes().count(b'"container_name":"logger"') < LINES + 1:
                return False
            return sum(map(len, _shipped(sink, "logger")[0].values())) >= LINES + 1

        wait_for("the shipper to catch up", caught_up, 120, 0.5)
        time.sleep(0.5)  # anything beyond the lines docker logs shows would arrive now
        got, dups = _shipped(sink, "logger")
        for stream in want:
            if got[stream] != want[stream]:
                diff = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(got[stream], want[stream], strict=False))
                        if a != b
                    ),
                    min(len(got[stream]), len(want[stream])),
                )
                raise AssertionError(
                    f"{stream} differs at line {diff}: shipped "
                    f"{got[stream][diff : diff + 1]!r:.200} vs docker logs "
                    f"{want[stream][diff : diff + 1]!r:.200} "
                    f"({len(got[stream])} vs {len(want[stream])} lines)"
                )
        files = sorted(
            p.name.split("-json.log")[1] or "current"
            for p in Path(f"/var/lib/docker/containers/{cid}").glob("*-json.log*")
        )
        assert len(files) == 3, f"rotation: {files}"
        longest = max(map(len, want["stdout"]))
        assert longest > 40000, longest
        assert running, "the logger had finished before the SIGKILL: not mid-stream"
        return (
            f"{LINES + 1} lines equal per stream (longest {longest} bytes, files {files}); "
            f"SIGKILL at {at_kill} bytes shipped, mid-stream; {dups} replayed after restart"
        )
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# -- interop with the engine --------------------------------------------------------------
def box_to_docker(ctx: dict[str, Any]) -> str:
    sh(BOX, "tag", "busybox", "boxmade:1")
    sh(BOX, "save", "-o", "/tmp/boxmade.tar", "boxmade:1")
    sh("docker", "load", "-i", "/tmp/boxmade.tar")
    said = out("docker", "run", "--rm", "--network", "none", "boxmade:1", "echo", "from-box")
    assert said == "from-box", said
    return "box save -> docker load -> docker run: from-box"


BUILT = """FROM busybox
ENV GREETING=built
WORKDIR /app
COPY hello.txt ./
RUN rm /bin/vi && echo "$GREETING by box" > /app/made.txt
CMD ["sh", "-c", "cat /app/hello.txt /app/made.txt; test -e /bin/vi || echo vi-gone"]
"""


def built_to_docker(ctx: dict[str, Any]) -> str:
    """An image made by ``box build`` (a RUN layer with a whiteout, COPY, ENV, WORKDIR,
    CMD) is accepted by ``docker load`` and runs the same under dockerd (issue 19)."""
    build_ctx = Path("/tmp/boxbuilt")
    build_ctx.mkdir(exist_ok=True)
    (build_ctx / "Dockerfile").write_text(BUILT)
    (build_ctx / "hello.txt").write_text("hello from the context\n")
    env = {**os.environ, "BOX_DEFAULT_NETWORK": "none"}  # the guest has no network
    sh(BOX, "build", "-t", "boxbuilt:1", str(build_ctx), env=env, timeout=300)
    ours = out(BOX, "run", "--rm", "--network", "none", "boxbuilt:1")
    sh(BOX, "save", "-o", "/tmp/boxbuilt.tar", "boxbuilt:1")
    loaded = out("docker", "load", "-i", "/tmp/boxbuilt.tar")
    theirs = out("docker", "run", "--rm", "--network", "none", "boxbuilt:1")
    want = "hello from the context\nbuilt by box\nvi-gone"
    assert ours == want and theirs == want, f"box run {ours!r}, docker run {theirs!r}"
    cfg = engine("/images/boxbuilt:1/json")["Config"]
    assert cfg["WorkingDir"] == "/app" and "GREETING=built" in cfg["Env"], cfg
    return f"box build -> box save -> {loaded} -> docker run: {theirs!r}"


def docker_to_box(ctx: dict[str, Any]) -> str:
    sh("docker", "tag", "busybox", "dockermade:1")
    sh("docker", "save", "-o", "/tmp/dockermade.tar", "dockermade:1")
    sh(BOX, "load", "-i", "/tmp/dockermade.tar")
    said = out(BOX, "run", "--rm", "--network", "none", "dockermade:1", "echo", "from-docker")
    assert said == "from-docker", said
    return "docker save -> box load -> box run: from-docker"


PROGRAM = (
    "echo one; echo two >&2; head -c 40000 /dev/zero | tr '\\0' y; echo; "
    "echo three >&2; printf 'no newline'"
)
# Go's RFC3339Nano: UTC, "Z", the fraction without trailing zeros
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")


def _jsonfile(path: str) -> dict[str, list[tuple[list[str], str]]]:
    """Per stream, each line's (keys in order, log); times checked against TIME."""
    streams: dict[str, list[tuple[list[str], str]]] = {"stdout": [], "stderr": []}
    for raw in Path(path).read_bytes().splitlines():
        e = json.loads(raw)
        assert TIME.match(e["time"]), f"{path}: time {e['time']!r}"
        streams[e["stream"]].append((list(e), e["log"]))
    return streams


def same_log(ctx: dict[str, Any]) -> str:
    sh("docker", "run", "--name", "jf", "--network", "none", "busybox", "sh", "-c", PROGRAM)
    sh(BOX, "run", "--name", "jf", "--network", "none", "busybox", "sh", "-c", PROGRAM)
    theirs = _jsonfile(engine("/containers/jf/json")["LogPath"])
    ours = _jsonfile(box_inspect("jf", "{{.LogPath}}"))
    for stream in theirs:
        assert ours[stream] == theirs[stream], (
            f"{stream}: box {[(k, v[:40]) for k, v in ours[stream]]} vs dockerd "
            f"{[(k, v[:40]) for k, v in theirs[stream]]}"
        )
    partials = sum(1 for _, v in theirs["stdout"] if not v.endswith("\n"))
    return (f"{sum(map(len, theirs.values()))} lines equal ({partials} without newline: "
            "partials and the last)")


def register(suite: Suite) -> None:
    """Add the shipper and interop checks, in this order."""
    suite.check("shipper_ships_what_docker_logs_shows")(shipper)
    suite.check("interop_box_save_docker_load_run")(box_to_docker)
    suite.check("interop_box_build_docker_load_run")(built_to_docker)
    suite.check("interop_docker_save_box_load_run")(docker_to_box)
    suite.check("interop_jsonfile_same_as_dockerd")(same_log)
