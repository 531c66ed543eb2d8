"""Attack: a container inherits the session keyring of whoever ran ``box run`` and reads
the keys host root put there (credentials, tokens). Each container gets its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BOX, Box
from tests.security.conftest import busybox_with_probe, imported_rootfs

_KEYCTL = 250 if os.uname().machine != "aarch64" else 219

PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long r = syscall(SYS_keyctl, 0, -3, 0);  /* GET_KEYRING_ID of the session keyring */
    long found = syscall(SYS_keyctl, 10, -3, "user", argv[1], 0);  /* SEARCH for the key */
    printf("session %ld key %s\n", r, found >= 0 ? "found" : strerrorname_np(errno));
    return 0;
}
"""


def test_a_host_key_is_not_readable_inside(box: Box, tmp_path: Path) -> None:
    import uuid

    name = f"box-test-{uuid.uuid4().hex[:8]}"
    rootfs = busybox_with_probe(tmp_path, "keyprobe", PROBE)
    with imported_rootfs(box, rootfs, "keys") as image:
        # A fresh session keyring of the test's own (not the shared one of this login), a
        # user key in it, then `box run` from there, as an admin's shell would.
        script = (
            "import ctypes, os, subprocess, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            f"sid = libc.syscall({_KEYCTL}, 1, None)\n"
            f"key = libc.syscall(248, b'user', {name.encode()!r}, b'secret', 6, -3)\n"
            "assert sid > 0 and key > 0, ctypes.get_errno()\n"
            f"p = subprocess.run([{BOX!r}, 'run', '--rm', '--network', 'none', "
            f"'--security-opt', 'seccomp=unconfined', {image!r}, '/keyprobe', {name!r}],"
            " capture_output=True, text=True)\n"
            "print(sid); print(p.stdout, end=''); sys.exit(p.returncode)\n")
        out = subprocess.run([sys.executable, "-c", script], env=box.env, capture_output=True,
                             text=True, check=True).stdout.split("\n")
    host_session = int(out[0])
    _, inner, _, verdict = out[1].split()
    assert int(inner) != host_session
    assert verdict == "ENOKEY"
