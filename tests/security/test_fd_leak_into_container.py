"""Attack: an fd the admin's shell (or a tool that runs ``box``) holds without O_CLOEXEC
reaches the container, which can read or write a host file through it (runc's
CVE-2024-21626 was an fd to the host's cgroup tree). box closed fds 3..65535 only, so
one above that bound (systemd's hard RLIMIT_NOFILE is 524288, Docker's 1048576) passed
into PID 1 and every exec'd process. Now every fd from 3 up is closed with
``close_range(3, ~0)`` but the ones box needs.

Two ways to see it: the fds a container process finds in /proc/self/fd (with the
highest fd the hard limit allows here: raising it needs CAP_SYS_RESOURCE, which a test
machine may not give), and, with strace, that the process which execs the container's
command closed everything up to ~0 first."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BOX, Box

FD_MAX = 0xFFFFFFFF


def _leak(secret: Path) -> Callable[[], None]:
    """In the child before exec: ``secret`` open, inheritable, at fd 7 and at 70000
    (above the old bound) or, where the hard limit cannot be raised, the highest fd it
    allows."""
    def preexec() -> None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (70100, 70100))
            high = 70000
        except (ValueError, OSError):
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            high = hard - 1
        fd = os.open(secret, os.O_RDWR)
        os.dup2(fd, 7)
        os.dup2(fd, high)
    return preexec


def _box(box: Box, secret: Path, *argv: str, trace: list[str] | None = None) -> str:
    proc = subprocess.run([*(trace or []), BOX, *argv], env=box.env, capture_output=True,
                          text=True, timeout=120, preexec_fn=_leak(secret),
                          close_fds=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout if trace is None else proc.stderr


def _assert_only_stdio(listing: str, secret: Path) -> None:
    fds = {line.split()[-3] for line in listing.splitlines() if "->" in line}
    assert secret.name not in listing, listing
    assert fds <= {"0", "1", "2", "3"}, listing  # 3: ls's own directory


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "host-secret"
    path.write_text("host\n")
    return path


def test_pid1_gets_no_fd_of_whoever_ran_box(box: Box, secret: Path) -> None:
    out = _box(box, secret, "run", "--rm", "--network", "none", "busybox",
               "ls", "-l", "/proc/self/fd")
    _assert_only_stdio(out, secret)


def test_exec_gets_no_fd_of_whoever_ran_box(box: Box, secret: Path) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
    _assert_only_stdio(_box(box, secret, "exec", cid, "ls", "-l", "/proc/self/fd"), secret)
    _box(box, secret, "exec", "-d", cid, "sh", "-c", "ls -l /proc/self/fd >/fds")
    out = ""
    for _ in range(100):
        out = box("exec", cid, "cat", "/fds").stdout
        if "->" in out:
            break
        time.sleep(0.05)
    _assert_only_stdio(out, secret)
    _assert_only_stdio(box.ok("exec", cid, "ls", "-l", "/proc/1/fd"), secret)


_LINE = re.compile(r"^(close_range|execve)\((.*)\)\s+=\s+(-?\d+)")


def _closed_before_exec(trace_dir: Path, command: str) -> list[tuple[int, int]]:
    """The close_range calls of the process that exec'd ``command`` (the container's),
    from strace's one file per process."""
    for path in trace_dir.iterdir():
        ranges = []
        for m in filter(None, map(_LINE.match, path.read_text().splitlines())):
            name, args, ret = m.groups()
            if name == "close_range" and ret == "0":
                first, last = (int(a.strip()) for a in args.split(",")[:2])
                ranges.append((first, last))
            elif name == "execve" and args.startswith(f'"{command}"') and ret == "0":
                return ranges
    raise AssertionError(f"no execve of {command} in the trace")


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_the_container_process_closes_every_fd_up_to_the_top(box: Box, secret: Path,
                                                             tmp_path: Path, verb: str) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (scripts/bootstrap installs it)")
    (tmp_path / "trace").mkdir()
    trace = ["strace", "-ff", "-qq", "-o", str(tmp_path / "trace" / "p"),
             "-e", "trace=close_range,execve"]
    if verb == "run":
        _box(box, secret, "run", "--rm", "--network", "none", "busybox", "/bin/true",
             trace=trace)
    else:
        cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "300").strip()
        _box(box, secret, "exec", cid, "/bin/true", trace=trace)
    ranges = _closed_before_exec(tmp_path / "trace", "/bin/true")
    assert ranges and ranges[-1][1] == FD_MAX, ranges
    closed = sum(last - first + 1 for first, last in ranges if last >= first)
    assert closed >= FD_MAX - 3 - 2, ranges  # all from 3 up, but the pipes box keeps
