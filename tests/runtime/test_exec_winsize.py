"""``box exec -it`` gives the exec's pty the caller's terminal size before the command
starts, and passes every later resize (SIGWINCH) on: what the web console's pane relies
on, and what ``docker exec -it`` does."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time

from tests.conftest import BOX, Box


def _size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, needle: bytes, timeout: float = 15.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert needle in seen, f"{needle!r} not in {seen[-400:]!r}"
    return seen


def test_exec_it_takes_the_terminal_size_and_follows_resizes(box: Box) -> None:
    box.ok("run", "-d", "--name", "winsz", "--network", "none", "busybox", "sleep", "600")
    master, slave = os.openpty()
    _size(master, 33, 101)
    script = "echo first $(stty size); read line; echo second $(stty size)"
    proc = subprocess.Popen(["setsid", "--ctty", BOX, "exec", "-it", "winsz", "sh", "-c", script],
                            stdin=slave, stdout=slave, stderr=slave, env=box.env)
    os.close(slave)
    try:
        _read_until(master, b"first 33 101")  # the size before the command ran
        _size(master, 40, 120)  # the kernel signals box exec, box resizes the exec's pty
        time.sleep(0.2)
        os.write(master, b"\n")
        _read_until(master, b"second 40 120")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
