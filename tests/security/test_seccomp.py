"""Attack: with no seccomp filter a container calls whatever the kernel offers:
``unshare -U`` (user namespaces, a common privilege-escalation surface), keyctl (the
host's keyrings), bpf, perf_event_open, userfaultfd (exploit helpers). Docker's default
profile refuses them; ``--security-opt`` changes or lifts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.security.conftest import busybox_with_probe, imported_rootfs

PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
/* Each probe makes one call with harmless arguments and prints its errno name. */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = -1;
        /* keyctl: GET_KEYRING_ID of the session keyring; bpf: PROG_LOAD without attr */
        if (!strcmp(argv[i], "keyctl")) r = syscall(SYS_keyctl, 0, -3, 0);
        else if (!strcmp(argv[i], "bpf")) r = syscall(SYS_bpf, 5, NULL, 0);
        else if (!strcmp(argv[i], "perf_event_open"))
            r = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
        else if (!strcmp(argv[i], "userfaultfd")) r = syscall(SYS_userfaultfd, 0);
        printf("%s %s\n", argv[i], r >= 0 ? "ok" : strerrorname_np(errno));
    }
    return 0;
}
"""
CALLS = ("keyctl", "bpf", "perf_event_open", "userfaultfd")


@pytest.fixture
def probe_image(box: Box, tmp_path: Path) -> Iterator[str]:
    """busybox with /probe."""
    with imported_rootfs(box, busybox_with_probe(tmp_path, "probe", PROBE), "probe") as name:
        yield name


def _probe(box: Box, image: str, *flags: str) -> dict[str, str]:
    out = box.ok("run", "--rm", "--network", "none", *flags, image, "/probe", *CALLS)
    return dict(line.split() for line in out.splitlines())


def test_default_profile_is_loaded(box: Box) -> None:
    out = box.ok("run", "--rm", "--network", "none", "busybox", "grep", "Seccomp:",
                 "/proc/self/status")
    assert out.split() == ["Seccomp:", "2"]


def test_default_profile_refuses_user_namespaces(box: Box) -> None:
    proc = box("run", "--rm", "--network", "none", "busybox", "unshare", "-U", "true")
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr


def test_default_profile_refuses_kernel_attack_surface(box: Box, probe_image: str) -> None:
    assert _probe(box, probe_image) == dict.fromkeys(CALLS, "EPERM")


def test_unconfined_lifts_the_profile(box: Box, probe_image: str) -> None:
    got = _probe(box, probe_image, "--security-opt", "seccomp=unconfined")
    assert got["keyctl"] == "ok" and got["perf_event_open"] == "EFAULT"
    out = box.ok("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined",
                 "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert out.split() == ["Seccomp:", "0"]


def test_privileged_runs_without_a_profile(box: Box) -> None:
    out = box.ok("run", "--rm", "--network", "none", "--privileged", "busybox", "grep",
                 "Seccomp:", "/proc/self/status")
    assert out.split() == ["Seccomp:", "0"]


def test_capability_dependent_rules_follow_cap_add(box: Box, probe_image: str) -> None:
    """SYS_ADMIN brings Docker's SYS_ADMIN block (bpf, perf_event_open, unshare, ...)."""
    got = _probe(box, probe_image, "--cap-add", "SYS_ADMIN")
    assert got["perf_event_open"] == "EFAULT" and got["bpf"] != "EPERM"
    assert got["keyctl"] == "EPERM"  # not in any block


def test_exec_gets_the_profile(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "30").strip()
    assert box.ok("exec", cid, "grep", "Seccomp:", "/proc/self/status").split() == [
        "Seccomp:", "2"]


def test_a_profile_file_in_dockers_format(box: Box, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13}]}))
    proc = box("run", "--rm", "--network", "none", "--security-opt", f"seccomp={profile}",
               "busybox", "mkdir", "/tmp/x")
    assert proc.returncode != 0 and "Permission denied" in proc.stderr
    assert box.ok("run", "--rm", "--network", "none", "--security-opt", f"seccomp={profile}",
                  "busybox", "echo", "ok").strip() == "ok"


def test_no_new_privileges(box: Box) -> None:
    out = box.ok("run", "--rm", "--network", "none", "--security-opt", "no-new-privileges",
                 "busybox", "grep", "-E", "Seccomp:|NoNewPrivs:", "/proc/self/status")
    assert out.split() == ["NoNewPrivs:", "1", "Seccomp:", "2"]
    out = box.ok("run", "--rm", "--network", "none", "busybox", "grep", "NoNewPrivs:",
                 "/proc/self/status")
    assert out.split() == ["NoNewPrivs:", "0"]


def test_malformed_profile_is_125_naming_file_and_error(box: Box, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [}')
    proc = box("run", "--rm", "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert proc.returncode == 125
    assert str(bad) in proc.stderr and "Expecting value" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = box("run", "--rm", "--security-opt", f"seccomp={tmp_path}/missing.json", "busybox",
               "true")
    assert proc.returncode == 125 and "missing.json" in proc.stderr
    proc = box("run", "--rm", "--security-opt", "apparmor=x", "busybox", "true")
    assert proc.returncode == 125 and "apparmor=x" in proc.stderr


def test_exec_privileged_gets_every_capability_under_the_profile(box: Box) -> None:
    """The profile for the full set (SYS_ADMIN's block included), not the container's."""
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "30").strip()
    status = "grep -E '^(CapEff|Seccomp):' /proc/self/status"
    plain = dict(ln.split() for ln in box.ok("exec", cid, "sh", "-c", status).splitlines())
    priv = dict(ln.split() for ln in box.ok("exec", "--privileged", cid, "sh", "-c",
                                            status).splitlines())
    assert plain["Seccomp:"] == priv["Seccomp:"] == "2"
    cap_sys_admin = 1 << 21
    assert not int(plain["CapEff:"], 16) & cap_sys_admin
    assert int(priv["CapEff:"], 16) & cap_sys_admin
    assert box("exec", "--privileged", cid, "unshare", "-U", "true").returncode == 0
