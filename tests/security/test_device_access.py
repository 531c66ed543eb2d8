"""Attack: a container creates a block device node of the host's disk and reads it
(MKNOD is in the default capability set and the rootfs is not nodev). Docker's device
rules refuse the open; ``--device`` and ``--privileged`` allow it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from runtime.security.devices import DEFAULT_RULES, apply_device_rules, rules_for
from tests.conftest import Box
from tests.security.conftest import SECRET
from tests.support.cgroup2 import unified_root


def _numbers(dev: str) -> tuple[int, int]:
    rdev = os.stat(dev).st_rdev
    return os.major(rdev), os.minor(rdev)


def _mknod_and_read(major: int, minor: int) -> str:
    return f"mknod /x b {major} {minor} && head -c {len(SECRET)} /x"


def test_mknod_of_a_host_disk_cannot_be_opened(box: Box, loop_device: str) -> None:
    major, minor = _numbers(loop_device)
    proc = box("run", "--rm", "busybox", "sh", "-c", _mknod_and_read(major, minor))
    assert proc.returncode != 0
    assert SECRET.decode() not in proc.stdout
    assert "Operation not permitted" in proc.stderr


def test_the_default_rules_are_in_the_v1_devices_cgroup(box: Box) -> None:
    cid = box.ok("run", "-d", "busybox", "sleep", "30").strip()
    group = Path(box.inspect(cid, "{{json .Box.CgroupPaths.devices}}").strip('"'))
    listed = set((group / "devices.list").read_text().split("\n")) - {""}
    assert "a *:* rwm" not in listed
    assert listed == {r.cgroup_v1() for r in DEFAULT_RULES}
    # the default nodes still work
    assert box.ok("exec", cid, "sh", "-c", "echo hi > /dev/null && head -c 4 /dev/zero | wc -c"
                  ).strip() == "4"


def test_privileged_lifts_the_rules(box: Box, loop_device: str) -> None:
    major, minor = _numbers(loop_device)
    out = box.ok("run", "--rm", "--privileged", "busybox", "sh", "-c",
                 _mknod_and_read(major, minor))
    assert out == SECRET.decode()


def test_device_flag_adds_one_node_and_its_rule(box: Box, loop_device: str) -> None:
    out = box.ok("run", "--rm", "--device", f"{loop_device}:/dev/xvdz", "busybox", "sh", "-c",
                 f"ls -l /dev/xvdz && head -c {len(SECRET)} /dev/xvdz")
    assert out.startswith("b") and out.endswith(SECRET.decode())
    # read-only permission: reading works, opening for writing does not
    proc = box("run", "--rm", "--device", f"{loop_device}:/dev/xvdz:r", "busybox", "sh", "-c",
               f"head -c {len(SECRET)} /dev/xvdz && echo x > /dev/xvdz")
    assert proc.stdout == SECRET.decode()
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr


@pytest.mark.parametrize("flag, message", [
    ("/dev/box-no-such-device", 'adding custom device "/dev/box-no-such-device"'),
    ("/etc/passwd", "not a device node"),
    ("/dev/null:/dev/n:rwx", "invalid device mode: rwx"),
    ("/dev/null:dev/n", "bad format for path: dev/n"),
])
def test_bad_device_flag_is_one_line_and_125(box: Box, flag: str, message: str) -> None:
    proc = box("run", "--rm", "--device", flag, "busybox", "true")
    assert proc.returncode == 125
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


UNIFIED = unified_root()  # the v2 hierarchy: /sys/fs/cgroup/unified here, the root on v2


def _open_in_group(group: Path, dev: str) -> str:
    """Open ``dev`` for reading from a process in ``group``: "ok" or the error."""
    code = ("import os,sys\n"
            f"open('{group}/cgroup.procs','w').write(str(os.getpid()))\n"
            "try:\n"
            f"    os.close(os.open('{dev}', os.O_RDONLY)); print('ok')\n"
            "except OSError as e:\n"
            "    print(e.strerror)\n")
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def v2_group() -> Path:
    if UNIFIED is None:
        pytest.skip("no cgroup v2 hierarchy (neither /sys/fs/cgroup nor its unified mount)")
    group = UNIFIED / "box" / f"test-devices-{os.getpid()}"
    group.mkdir(parents=True)
    yield group
    group.rmdir()
    with contextlib.suppress(OSError):  # the `box` parent, unless others still use it
        group.parent.rmdir()


def test_v2_device_program_denies_the_host_disk(v2_group: Path, loop_device: str) -> None:
    """The v2 driver's path (a BPF_PROG_TYPE_CGROUP_DEVICE program) on a real v2 group."""
    apply_device_rules(2, {"unified": str(v2_group)}, {"Privileged": False})
    assert _open_in_group(v2_group, loop_device) == "Operation not permitted"
    assert _open_in_group(v2_group, "/dev/null") == "ok"


def test_v2_device_program_allows_a_device_flag(v2_group: Path, loop_device: str) -> None:
    host = {"Devices": [{"PathOnHost": loop_device, "PathInContainer": "/dev/xvdz",
                         "CgroupPermissions": "r"}]}
    assert rules_for(host)[-1].access == "r"
    apply_device_rules(2, {"unified": str(v2_group)}, host)
    assert _open_in_group(v2_group, loop_device) == "ok"
    other = "/dev/vda" if os.path.exists("/dev/vda") else "/dev/loop-control"
    assert _open_in_group(v2_group, other) == "Operation not permitted"
