"""``box attach`` through the monitor's attach socket, on real containers: stdin to a
``-d -i`` container, a ``-dit`` shell through a pty (raw mode, window size, detach
keys), several clients at once, a client that never reads (dropped, the container and
its log go on), ``--no-stdin``, a container without ``-i``, and the socket itself."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import stat
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.conftest import BOX, Box
from tests.support.wait import wait_until


def _run(box: Box, *args: str) -> str:
    return box.ok("run", "--network", "none", *args).strip()


def _sock(box: Box, cid: str) -> Path:
    return box.exec_root / "containers" / cid / "attach.sock"


def _attach(box: Box, *args: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([BOX, "attach", *args], env=box.env, **kw)  # type: ignore[call-overload]


def _connect(box: Box, cid: str) -> socket.socket:
    """A raw client (the socket's path may be longer than an address may be)."""
    dir_fd = os.open(_sock(box, cid).parent, os.O_PATH | os.O_DIRECTORY)
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(f"/proc/self/fd/{dir_fd}/attach.sock")
    finally:
        os.close(dir_fd)
    return conn


def _attached(box: Box, cid: str, count: int) -> None:
    """Wait for ``count`` attach events (journaled once the client is connected)."""
    def seen() -> int:
        out = box.ok("events", "--since", "1h", "--until", "0s", "--filter",
                     f"container={cid}", "--filter", "event=attach", "--format", "{{.ID}}")
        return len(out.splitlines())
    wait_until(lambda: seen() >= count, timeout=30, what=f"{count} attach(es)", seen=seen)


def _raw(fd: int) -> bool:
    return not termios.tcgetattr(fd)[3] & termios.ECHO


def _read_until(fd: int, want: bytes, timeout: float = 20) -> bytes:
    """What ``fd`` gives until ``want`` shows up (AssertionError with what came)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while want not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no {want!r} within {timeout}s; got {seen[-2000:]!r}")
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side is gone
            data = b""
        if not data:
            raise AssertionError(f"EOF before {want!r}; got {seen[-2000:]!r}")
        seen += data
    return seen


def test_attach_feeds_stdin_of_a_detached_interactive_container(box: Box) -> None:
    cid = _run(box, "-d", "-i", "--name", "at-in", "busybox", "sh", "-c",
               "read l; echo got:$l; echo err:$l >&2; exit 3")
    sock = _sock(box, cid)
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    proc = subprocess.run([BOX, "attach", "at-in"], input=b"hello\n", capture_output=True,
                          env=box.env, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, b"got:hello\n", b"err:hello\n")
    assert box.inspect(cid, "{{.State.ExitCode}}") == "3"
    wait_until(lambda: not sock.exists(), timeout=20, what="the socket to go")


def test_stdin_stays_open_for_the_next_attach_and_no_stdin_sends_nothing(box: Box) -> None:
    cid = _run(box, "-d", "-i", "busybox", "sh", "-c",
               "while read l; do echo got:$l; done; echo eof; exit 4")
    # --no-stdin: nothing reaches the container; the first client's EOF (no StdinOnce
    # with -d) leaves its stdin open, so the next client is read too
    quiet = _attach(box, "--no-stdin", cid, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert quiet.stdin is not None and quiet.stdout is not None
    quiet.stdin.write(b"ignored\n")
    quiet.stdin.flush()
    _attached(box, cid, 1)
    feeder = _attach(box, cid, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert feeder.stdin is not None and feeder.stdout is not None
    feeder.stdin.write(b"one\n")
    feeder.stdin.close()  # its EOF
    assert feeder.stdout.readline() == b"got:one\n"
    assert quiet.stdout.readline() == b"got:one\n"  # the output reaches every client
    assert box.inspect(cid, "{{.State.Status}}") == "running"
    second = _attach(box, cid, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert second.stdin is not None and second.stdout is not None
    _attached(box, cid, 3)
    second.stdin.write(b"two\n")
    second.stdin.flush()
    assert second.stdout.readline() == b"got:two\n"
    assert feeder.stdout.readline() == b"got:two\n"
    box.ok("kill", cid)
    for proc in (quiet, feeder, second):
        assert proc.wait(timeout=30) == 137  # the container's code
    log = box.ok("logs", cid)
    assert log == "got:one\ngot:two\n"  # "ignored" never reached it


def test_a_container_without_i_does_not_read_attach_stdin(box: Box) -> None:
    cid = _run(box, "-d", "busybox", "sh", "-c",
               "sleep 1; if read l; then echo read:$l; else echo nothing; fi; exit 5")
    proc = subprocess.run([BOX, "attach", cid], input=b"hello\n", capture_output=True,
                          env=box.env, timeout=60)
    assert (proc.returncode, proc.stdout) == (5, b"nothing\n"), proc.stderr


def test_dit_shell_through_a_pty_detach_and_attach_again(box: Box) -> None:
    cid = _run(box, "-dit", "--name", "at-tty", "busybox", "sh")
    master, slave = pty.openpty()
    try:
        termios_before = termios.tcgetattr(slave)
        # the window size is sent on connect
        import fcntl

        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        proc = _attach(box, "at-tty", stdin=slave, stdout=slave, stderr=slave)
        wait_until(lambda: _raw(slave), timeout=20, what="raw mode")
        _attached(box, cid, 1)
        os.write(master, b"echo $((6*7)); stty size\n")
        out = _read_until(master, b"33 101")
        assert b"42\r\n" in out
        # a resize reaches the container (SIGWINCH -> TIOCSWINSZ on its master)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 70, 0, 0))
        proc.send_signal(__import__("signal").SIGWINCH)
        time.sleep(0.3)
        os.write(master, b"stty size\n")
        _read_until(master, b"20 70")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q
        assert proc.wait(timeout=20) == 0
        assert termios.tcgetattr(slave) == termios_before  # restored
        assert box.inspect(cid, "{{.State.Status}}") == "running"
        # again, with other keys; a prefix that breaks off is sent as typed
        proc = _attach(box, "--detach-keys", "z,q", "at-tty", stdin=slave, stdout=slave,
                       stderr=slave)
        wait_until(lambda: _raw(slave), timeout=20, what="raw mode")
        os.write(master, b"echo zw$((2+3))\n")
        _read_until(master, b"zw5\r\n")
        os.write(master, b"\x10\x11")  # not the keys now: sent to the shell
        os.write(master, b"zq")
        assert proc.wait(timeout=20) == 0
        assert box.inspect(cid, "{{.State.Status}}") == "running"
        # SIGTERM to the client (no sig-proxy with a tty): it ends, the terminal restored
        proc = _attach(box, "at-tty", stdin=slave, stdout=slave, stderr=slave)
        wait_until(lambda: _raw(slave), timeout=20, what="raw mode")
        proc.terminate()
        assert proc.wait(timeout=20) == 143
        assert termios.tcgetattr(slave) == termios_before
        assert box.inspect(cid, "{{.State.Status}}") == "running"
        # and once more: typing exit ends the container and the attach with its code
        proc = _attach(box, "at-tty", stdin=slave, stdout=slave, stderr=slave)
        wait_until(lambda: _raw(slave), timeout=20, what="raw mode")
        _attached(box, cid, 4)
        os.write(master, b"exit 9\n")
        assert proc.wait(timeout=30) == 9
        assert termios.tcgetattr(slave) == termios_before
    finally:
        os.close(master)
        os.close(slave)
    events = box.ok("events", "--since", "1h", "--until", "0s", "--filter", f"container={cid}",
                    "--filter", "event=detach", "--format", "{{json .}}")
    assert len([json.loads(line) for line in events.splitlines()]) == 2


def test_two_clients_see_the_output_and_a_client_that_never_reads_is_dropped(
        box: Box, tmp_path: Path) -> None:
    cid = _run(box, "-d", "busybox", "sh", "-c",
               "until [ -e /tmp/go ]; do sleep 0.1; done; seq 1 1000000; echo done; exit 6")
    # the stuck client: a raw connection that never reads (6.9 MB pass it by)
    stuck = _connect(box, cid)
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = []
    for out in outs:
        with out.open("wb") as f:
            procs.append(_attach(box, cid, stdin=subprocess.DEVNULL, stdout=f))
    _attached(box, cid, 2)
    box.ok("exec", cid, "touch", "/tmp/go")
    try:
        assert [p.wait(timeout=120) for p in procs] == [6, 6]
        out_a, out_b = (out.read_bytes() for out in outs)
        lines = out_a.splitlines()
        assert out_a == out_b and lines[0] == b"1" and lines[-1] == b"done"
        assert len(lines) == 1000001
        # the stuck one was dropped: what it can still read ends early, without an exit
        got = b""
        while chunk := stuck.recv(1 << 20):
            got += chunk
        assert 0 < len(got) < len(out_a)
        assert b"done" not in got
    finally:
        stuck.close()
    assert box.inspect(cid, "{{.State.ExitCode}}") == "6"
    assert box.ok("logs", cid).splitlines()[-1] == "done"  # the log has it all


def test_attach_exits_with_the_code_of_a_container_that_ends_while_connecting(box: Box) -> None:
    cid = _run(box, "-d", "busybox", "sh", "-c", "sleep 0.5; exit 8")
    proc = subprocess.run([BOX, "attach", cid], stdin=subprocess.DEVNULL, capture_output=True,
                          env=box.env, timeout=60)
    assert proc.returncode in (8,) or "stopped container" in proc.stderr.decode(), proc.stderr
    wait_until(lambda: not _sock(box, cid).exists(), timeout=20, what="the socket to go")


def test_bad_input_is_one_line(box: Box) -> None:
    proc = box("attach", "no-such-ctr")
    assert (proc.returncode, proc.stderr) == (1, "box: No such container: no-such-ctr\n")
    cid = _run(box, "-d", "busybox", "sleep", "30")
    proc = box("attach", "--detach-keys", "ctrl-1", cid)
    assert (proc.returncode, proc.stderr) == (
        1, "box: Invalid detach keys (ctrl-1) provided\n")
    box.ok("pause", cid)
    proc = box("attach", cid)
    assert (proc.returncode, proc.stderr) == (
        1, "box: You cannot attach to a paused container, unpause it first\n")
    box.ok("rm", "-f", cid)


def test_start_a_of_a_running_container_attaches_through_the_socket(box: Box) -> None:
    cid = _run(box, "-d", "-i", "busybox", "sh", "-c", "read l; echo got:$l; exit 2")
    proc = subprocess.run([BOX, "start", "-a", "-i", cid], input=b"x\n", capture_output=True,
                          env=box.env, timeout=60)
    assert (proc.returncode, proc.stdout) == (2, b"got:x\n"), proc.stderr
    # without -i our stdin stays ours (docker's start -a): the container waits on
    cid = _run(box, "-d", "-i", "busybox", "sh", "-c",
               "if read -t 3 l; then echo got:$l; else echo none; fi; exit 4")
    proc = subprocess.run([BOX, "start", "-a", cid], input=b"y\n", capture_output=True,
                          env=box.env, timeout=60)
    assert (proc.returncode, proc.stdout) == (4, b"none\n"), proc.stderr


def test_stdin_once_the_attached_clients_eof_closes_the_containers_stdin(box: Box) -> None:
    # `run -i` without -d records StdinOnce; after a restart (no client of `run` left)
    # the monitor holds its stdin, and an attach client's EOF is the container's
    proc = subprocess.run([BOX, "run", "-i", "--network", "none", "--name", "at-once",
                           "--restart", "on-failure:1", "busybox", "sh", "-c",
                           "if [ -e /tmp/again ]; then cat; echo cat-ended; exit 0; fi; "
                           "touch /tmp/again; exit 1"],
                          stdin=subprocess.DEVNULL, capture_output=True, env=box.env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert box.inspect("at-once", "{{.Config.StdinOnce}}") == "true"
    wait_until(lambda: box.inspect("at-once", "{{.State.Status}}") == "running"
               and box.inspect("at-once", "{{.RestartCount}}") == "1", timeout=30,
               what="the restart")
    proc = subprocess.run([BOX, "attach", "at-once"], input=b"abc", capture_output=True,
                          env=box.env, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, b"abccat-ended\n"), proc.stderr


def test_a_terminal_on_a_non_tty_interactive_container_stays_cooked(box: Box) -> None:
    cid = _run(box, "-d", "-i", "busybox", "sh", "-c", "read l; echo got:$l; exit 0")
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        proc = _attach(box, cid, stdin=slave, stdout=slave, stderr=slave)
        _attached(box, cid, 1)
        assert termios.tcgetattr(slave) == before  # line editing and echo are ours
        os.write(master, b"hi\n")
        _read_until(master, b"got:hi")
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        os.close(slave)
