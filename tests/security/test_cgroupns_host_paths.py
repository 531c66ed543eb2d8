"""Attack: a container that shares the host's cgroup namespace reads where it lives in
the host's tree (``/proc/self/cgroup`` names ``/box/<id>``) and so the host's layout.
With ``--cgroupns private`` (Docker's default on cgroup v2) its own cgroup is ``/``."""

from __future__ import annotations

from tests.conftest import Box


def _cgroup_lines(box: Box, *flags: str) -> list[str]:
    out = box.ok("run", "--rm", "--network", "none", *flags, "busybox", "cat", "/proc/self/cgroup")
    return out.splitlines()


def test_private_cgroupns_shows_root_paths(box: Box) -> None:
    lines = _cgroup_lines(box, "--cgroupns", "private")
    by_controller = {ln.split(":", 2)[1]: ln.split(":", 2)[2] for ln in lines}
    memory = next(k for k in by_controller if "memory" in k.split(","))
    pids = next(k for k in by_controller if "pids" in k.split(","))
    assert by_controller[memory] == "/", lines
    assert by_controller[pids] == "/", lines
    assert not any("/box/" in ln for ln in lines), lines


def test_host_cgroupns_shows_the_host_path(box: Box) -> None:
    lines = _cgroup_lines(box, "--cgroupns", "host")
    assert any("/box/" in ln for ln in lines), lines


def test_default_follows_docker_and_inspect_says_it(box: Box) -> None:
    import os

    cid = box.ok("create", "--network", "none", "busybox", "true").strip()
    expected = "private" if os.path.isfile("/sys/fs/cgroup/cgroup.controllers") else "host"
    assert box.inspect(cid, "{{.HostConfig.CgroupnsMode}}") == expected
    cid2 = box.ok("create", "--network", "none", "--cgroupns", "private", "busybox", "true")
    assert box.inspect(cid2.strip(), "{{.HostConfig.CgroupnsMode}}") == "private"


def test_exec_joins_the_private_cgroupns(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "--cgroupns", "private", "busybox",
                 "sleep", "30").strip()
    lines = box.ok("exec", cid, "cat", "/proc/self/cgroup").splitlines()
    assert not any("/box/" in ln for ln in lines), lines


def test_bad_cgroupns_value_is_one_line(box: Box) -> None:
    proc = box("run", "--rm", "--cgroupns", "shared", "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr.strip().count("\n") == 0 and "shared" in proc.stderr
