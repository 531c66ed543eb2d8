"""Exit 125 is never silent: a container that fails before its command runs (in the
flags' validation, in the monitor, in PID 1's setup) makes `box run`/`start` print one
line naming the cause, with -t and without, attached and detached."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Box


def one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    what = f"{proc.args[1:]} -> {proc.returncode}\n{proc.stderr}"
    assert proc.returncode == code, what
    assert "Traceback" not in proc.stderr, what
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("box: "), what
    for word in words:
        assert word in lines[0], what


@pytest.mark.parametrize("tty", [[], ["-t"]], ids=["pipes", "tty"])
def test_nonexistent_cpu(box: Box, tty: list[str]) -> None:
    cpu = str((os.cpu_count() or 1) + 7)
    proc = box("run", "--rm", *tty, "--network", "none", "--cpuset-cpus", cpu, "busybox", "true")
    one_line(proc, 125, "Requested CPUs are not available", f"requested {cpu}")


@pytest.mark.parametrize("mode", [[], ["-t"], ["-d"]], ids=["attached", "tty", "detached"])
def test_workdir_that_is_a_file(box: Box, mode: list[str]) -> None:
    """PID 1 fails after the monitor forked it, before exec: its cause crosses two
    processes (PID 1 -> monitor -> box run)."""
    proc = box("run", "--rm", *mode, "--network", "none", "-w", "/bin/busybox", "busybox", "true")
    one_line(proc, 125, '"/bin/busybox"', "not a directory")


def test_missing_image_layer_is_named(tmp_path: Path, make_box: Callable[[Path, Path], Box],
                                      busybox_tar: Path) -> None:
    """A broken image rootfs (a layer directory gone from the store)."""
    own = make_box(tmp_path / "root", tmp_path / "run")
    own.ok("import", str(busybox_tar), "broken")
    layer = own.inspect("broken", "{{index .RootFS.Layers 0}}")[7:]
    os.rename(own.root / "image" / "layers" / layer, tmp_path / "moved")
    try:
        for tty in ([], ["-t"]):
            proc = own("run", "--rm", *tty, "--network", "none", "broken", "true")
            one_line(proc, 125, f"layers/{layer} is missing")
    finally:
        os.rename(tmp_path / "moved", own.root / "image" / "layers" / layer)
    assert own.ok("run", "--rm", "--network", "none", "broken", "echo", "fine") == "fine\n"


def test_unwritable_monitor_log_costs_nothing(box: Box) -> None:
    """The monitor's run dir blocked by a file: it used to raise when the monitor moved
    its stderr to monitor.log (detached: before the start, so `start` failed; attached:
    after the exit, recording 125 over the command's 0). Now it logs to /dev/null."""
    cid = box.ok("create", "--network", "none", "busybox", "true").strip()
    run_dir = box.exec_root / "containers" / cid
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    run_dir.write_text("in the way")
    try:
        # attached, the monitor's log is our stderr: it gets through and runs it
        proc = box("start", "-a", cid)
        assert proc.returncode == 0, proc.stderr
        assert box.inspect(cid, "{{.State.ExitCode}} {{.State.Status}}") == "0 exited"
        proc = box("start", cid)  # detached: the monitor has nowhere to log
        assert proc.returncode == 0, proc.stderr
    finally:
        run_dir.unlink()
    box.ok("rm", "-f", cid)


def test_tty_run_reports_its_exit(box: Box) -> None:
    """The `run -t` that was seen exiting 125 with an empty stderr under load: whatever
    ends it, a 125 comes with a line; a normal run passes the exit code on."""
    for _ in range(5):
        proc = box("run", "--rm", "-t", "busybox", "sh", "-c", "[ -t 0 ] && [ -t 1 ]")
        assert proc.returncode == 0 or proc.stderr.startswith("box: "), proc
        assert proc.returncode == 0, proc.stderr
    proc = box("run", "--rm", "-t", "busybox", "sh", "-c", "exit 125")
    assert (proc.returncode, proc.stderr) == (125, "")  # the command's own 125: no message
