"""Bad input and faults: docker's exit codes, one clear line naming the value, and
nothing left behind (no state directory, no name, no cgroup, no mount)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.support.cgroup2 import container_groups, hierarchies


def _procs(cgroup: Path) -> str:
    try:
        return (cgroup / "cgroup.procs").read_text().strip()
    except OSError:
        return ""  # removed while we looked


def snapshot(box: Box) -> dict[str, frozenset[str]]:
    """Everything a failed create could leave: files in the root, cgroups, mounts."""
    def files(top: Path) -> frozenset[str]:
        if not top.exists():
            return frozenset()
        return frozenset(str(Path(d, f)) for d, dirs, fs in os.walk(top) for f in fs + dirs)

    # Container cgroups (64-hex names) with no process in them: what a failed create
    # would leak. Other sessions may run containers (or bench-N groups) meanwhile.
    cgroups = frozenset(str(p) for ctrl in hierarchies()
                        if (ctrl / "box").is_dir() for p in (ctrl / "box").iterdir()
                        if re.fullmatch(r"[0-9a-f]{64}", p.name) and p.is_dir()
                        and not _procs(p))
    mounts = frozenset(ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                       if str(box.root) in ln or str(box.exec_root) in ln)
    return {"containers": files(box.root / "containers"),
            "overlay2": files(box.root / "overlay2"),
            "names": files(box.root / "names"),
            "exec_root": files(box.exec_root / "containers"),
            "cgroups": cgroups, "mounts": mounts}


@pytest.mark.parametrize("args, value", [
    (("-m", "12x"), "12x"),
    (("--memory-swap", "1q"), "1q"),
    (("--memory-reservation", "-5"), "-5"),
    (("--cpus", "-1"), "-1"),
    (("--cpus", "abc"), "abc"),
    (("--cpu-shares", "lots"), "lots"),
    (("--cpuset-cpus", "99"), "99"),
    (("--cpuset-mems", "7"), "7"),
    (("--pids-limit", "x"), "x"),
    (("--device-read-bps", "/dev/nonexistent:1mb"), "/dev/nonexistent"),
    (("--device-write-iops", "/dev/null:many"), "many"),
    (("--restart", "bogus"), "bogus"),
    (("--restart", "always:3"), "always:3"),
    (("--restart", "on-failure:x"), "on-failure:x"),
    (("--log-opt", "max-size=abc"), "abc"),
    (("--log-opt", "max-file=0"), "0"),
    (("--log-opt", "foo=1"), "foo"),
    (("--log-opt", "compress=maybe"), "maybe"),
    (("-e", "=x"), "=x"),
    (("--cap-add", "BOGUS"), "BOGUS"),
    (("--cap-drop", "NOPE"), "NOPE"),
    (("--network", "nosuchnet"), "nosuchnet"),
    (("--name", "bad name!"), "bad name!"),
    (("--rm", "--restart", "always"), "--restart"),
])
def test_bad_flag_exits_125_and_leaves_nothing(box: Box, args: tuple[str, ...], value: str
                                               ) -> None:
    before = snapshot(box)
    for verb in ("run", "create"):
        proc = box(verb, *args, "busybox", "true")
        assert proc.returncode == 125, (verb, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and value in lines[0], proc.stderr
        assert proc.stdout == ""
    assert snapshot(box) == before
    assert box.ok("ps", "-aq") == ""


def test_unknown_image(box: Box) -> None:
    before = snapshot(box)
    proc = box("run", "nosuchimage:v9", "true")
    assert proc.returncode == 125
    assert proc.stderr.splitlines() == ["box: Unable to find image 'nosuchimage:v9' locally"]
    assert snapshot(box) == before


def test_missing_command(box: Box, busybox_tar: Path) -> None:
    """The imported busybox image has no Cmd: docker says "no command specified"."""
    before = snapshot(box)
    proc = box("run", "busybox")
    assert proc.returncode == 125
    assert proc.stderr.splitlines() == ["box: no command specified"]
    assert snapshot(box) == before


def test_name_already_in_use(box: Box) -> None:
    cid = box.ok("create", "--name", "taken", "busybox", "true").strip()
    before = snapshot(box)
    proc = box("run", "--name", "taken", "busybox", "true")
    assert proc.returncode == 125
    (line,) = proc.stderr.splitlines()
    assert '"/taken"' in line and cid in line
    assert snapshot(box) == before
    assert box.ok("ps", "-aq", "--no-trunc").split() == [cid]


def test_name_is_free_again_after_rm(box: Box) -> None:
    box.ok("create", "--name", "reuse", "busybox", "true")
    box.ok("rm", "reuse")
    box.ok("create", "--name", "reuse", "busybox", "true")


@pytest.mark.parametrize("argv, code, message", [
    (("nothere",), 127, 'exec: "nothere": executable file not found in $PATH'),
    (("/bin/nothere",), 127, "/bin/nothere"),
    (("/etc/passwd",), 126, 'exec: "/etc/passwd": permission denied'),
    (("/etc",), 126, "is a directory"),
])
def test_command_cannot_run(box: Box, argv: tuple[str, ...], code: int, message: str) -> None:
    proc = box("run", "--name", "broken", "busybox", *argv)
    assert proc.returncode == code
    (line,) = proc.stderr.splitlines()
    assert message in line
    # like docker: the container stays, never started, its cgroup gone
    assert box.inspect("broken", "{{.State.Status}} {{.State.ExitCode}}") == f"created {code}"
    cid = box.inspect("broken", "{{.Id}}")
    assert not container_groups(cid)


def test_rm_of_a_running_container_needs_force(box: Box) -> None:
    cid = box.ok("run", "-d", "busybox", "sleep", "60").strip()
    proc = box("rm", cid)
    assert proc.returncode == 1
    assert "cannot remove a running container" in proc.stderr
    assert box.inspect(cid, "{{.State.Running}}") == "true"
    box.ok("rm", "-f", cid)
    assert box.ok("ps", "-aq") == ""


@pytest.mark.parametrize("verb", [("rm",), ("stop",), ("kill",), ("restart",), ("wait",),
                                  ("start",), ("logs",), ("top",), ("exec", "--", "x")])
def test_unknown_container(box: Box, verb: tuple[str, ...]) -> None:
    argv = [verb[0], "nosuch", *verb[1:]] if verb[0] != "exec" else ["exec", "nosuch", "true"]
    proc = box(*argv)
    assert proc.returncode == 1, proc.stderr
    assert "No such container: nosuch" in proc.stderr


def test_inspect_unknown_object(box: Box) -> None:
    proc = box("inspect", "nosuch")
    assert proc.returncode == 1
    assert proc.stdout.strip() == "[]"
    assert "No such object: nosuch" in proc.stderr


def test_kill_of_a_stopped_container(box: Box) -> None:
    box.ok("run", "--name", "done", "busybox", "true")
    proc = box("kill", "done")
    assert proc.returncode == 1
    assert "is not running" in proc.stderr


def test_kill_with_a_bad_signal(box: Box) -> None:
    box.ok("run", "-d", "--name", "sig", "busybox", "sleep", "60")
    proc = box("kill", "-s", "SIGNOPE", "sig")
    assert proc.returncode == 1
    assert "SIGNOPE" in proc.stderr
    assert box.inspect("sig", "{{.State.Running}}") == "true"
