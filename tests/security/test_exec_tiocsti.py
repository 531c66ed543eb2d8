"""Attack (TIOCSTI): ``box exec`` from an admin's terminal handed that terminal to the
container's process, in the admin's session; ``ioctl(fd, TIOCSTI, c)`` on its
controlling tty pushes characters into the admin's shell input (kernels < 6.2, or
``dev.tty.legacy_tiocsti=1``). The process now gets pipes box owns and its own session."""

from __future__ import annotations

import fcntl
import os
import subprocess
import termios
import uuid
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.security.conftest import gcc

PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    char line[128] = "";
    for (int fd = 0; fd < 3; fd++) {
        char c = 'Z';
        int r = ioctl(fd, TIOCSTI, &c);
        char part[32];
        snprintf(part, sizeof part, "%d:%s ", fd, r == 0 ? "INJECTED" : strerrorname_np(errno));
        strcat(line, part);
    }
    int out = open("/result", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dprintf(out, "%s\n", line);
    return 0;
}
"""


def _legacy_tiocsti() -> bool:
    try:
        return Path("/proc/sys/dev/tty/legacy_tiocsti").read_text().strip() == "1"
    except OSError:
        return True  # older kernels: TIOCSTI always works


@pytest.mark.parametrize("interactive", [False, True], ids=["plain", "interactive"])
def test_exec_cannot_type_into_the_callers_terminal(box: Box, tmp_path: Path,
                                                    interactive: bool) -> None:
    if not _legacy_tiocsti():
        pytest.skip("dev.tty.legacy_tiocsti=0: this kernel refuses TIOCSTI to everyone")
    probe = gcc(tmp_path, "tiocsti", PROBE, "-static")
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    box.ok("cp", str(probe), f"{cid}:/tiocsti")
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO  # what is typed in must stay in the input queue, not echo
    termios.tcsetattr(slave, termios.TCSANOW, attrs)

    def admin_shell() -> None:  # box exec's controlling terminal is the pty, as a login's
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    flags = ["-i"] if interactive else []
    try:
        proc = subprocess.run([BOX, "exec", *flags, cid, "/tiocsti"], stdin=slave,
                              stdout=slave, stderr=slave, env=box.env, timeout=60,
                              preexec_fn=admin_shell)
        assert proc.returncode == 0
        os.set_blocking(slave, False)
        try:
            pending = os.read(slave, 4096)
        except BlockingIOError:
            pending = b""
    finally:
        os.close(master)
        os.close(slave)
    verdict = box.ok("exec", cid, "cat", "/result").strip()
    assert "INJECTED" not in verdict, verdict
    assert b"Z" not in pending, pending


def test_exec_output_and_input_still_flow(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    proc = box("exec", "-i", cid, "sh", "-c", "cat; echo err >&2; exit 3",
               input=f"hello {uuid.uuid4().hex}\n".encode())
    assert proc.returncode == 3
    assert proc.stdout.startswith("hello ") and proc.stderr == "err\n"
