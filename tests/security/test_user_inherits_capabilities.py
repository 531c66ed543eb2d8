"""Attack: ``-u USER`` cleared a non-root user's permitted and effective capabilities
(setuid does) but kept the inheritable set of whoever ran ``box run``; a file with
inheritable file capabilities inside could then regain them. A non-root user now starts
with no capabilities in any set."""

from __future__ import annotations

import ctypes
import os
import subprocess

from tests.conftest import BOX, Box

_CAPGET, _CAPSET = (90, 91) if os.uname().machine == "aarch64" else (125, 126)
CAP_NET_RAW = 13


def _with_inheritable_net_raw() -> None:
    """In the child before exec: CAP_NET_RAW added to our inheritable and ambient sets
    (ambient capabilities survive an exec of an unprivileged file, setuid too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    assert libc.syscall(_CAPGET, header, data) == 0
    data[2] |= 1 << CAP_NET_RAW  # inheritable, low word
    assert libc.syscall(_CAPSET, header, data) == 0, ctypes.get_errno()
    pr_cap_ambient, raise_ = 47, 2
    assert libc.prctl(pr_cap_ambient, raise_, CAP_NET_RAW, 0, 0) == 0, ctypes.get_errno()


def _caps(box: Box, *flags: str) -> dict[str, int]:
    proc = subprocess.run([BOX, "run", "--rm", "--network", "none", *flags, "busybox", "grep",
                           "^Cap", "/proc/self/status"], env=box.env, capture_output=True,
                          text=True, timeout=60, preexec_fn=_with_inheritable_net_raw,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return {k.strip(): int(v, 16) for k, v in (ln.split(":") for ln in proc.stdout.splitlines())}


def test_a_non_root_user_inherits_no_capabilities(box: Box) -> None:
    caps = _caps(box, "-u", "1000")
    assert caps["CapInh"] == 0 and caps["CapPrm"] == 0 and caps["CapEff"] == 0, caps
    assert caps["CapAmb"] == 0, caps


def test_root_keeps_the_default_set_and_no_inheritable(box: Box) -> None:
    caps = _caps(box)
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, caps
    assert caps["CapEff"] & (1 << CAP_NET_RAW), caps  # Docker's default set has it
