"""stop / kill / restart / wait / rm, restart policies, concurrent commands on one
container, and a monitor killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.support.cgroup2 import container_groups, controller_group, pure_v2
from tests.support.wait import wait_until as wait_for

TRAP_TERM = 'trap "exit 0" TERM; while true; do sleep 0.05; done'


def alive(pid: int) -> bool:
    """A zombie (reparented to a host init that does not reap) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cgroup_dirs(cid: str) -> list[Path]:
    return container_groups(cid)


def start(box: Box, *args: str, name: str | None = None) -> str:
    flags = ["--name", name] if name else []
    return box.ok("run", "-d", *flags, *args).strip()


def test_stop_kills_after_the_timeout_when_pid_1_ignores_sigterm(box: Box) -> None:
    cid = start(box, "busybox", "sleep", "60")
    t0 = time.monotonic()
    assert box.ok("stop", "-t", "1", cid).strip() == cid
    elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 3, elapsed
    assert box.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert box.inspect(cid, "{{.State.FinishedAt}}") != "0001-01-01T00:00:00Z"
    assert cgroup_dirs(cid) == []


def test_stop_lets_a_trapping_shell_exit_cleanly(box: Box) -> None:
    cid = start(box, "busybox", "sh", "-c", TRAP_TERM)
    time.sleep(0.2)  # let the shell install its trap
    t0 = time.monotonic()
    box.ok("stop", "-t", "5", cid)
    assert time.monotonic() - t0 < 2
    assert box.inspect(cid, "{{.State.ExitCode}}") == "0"


def test_stop_of_a_stopped_container_is_fine(box: Box) -> None:
    box.ok("run", "--name", "done", "busybox", "true")
    assert box.ok("stop", "done").strip() == "done"


@pytest.mark.parametrize("sig, code", [("USR1", 7), ("SIGUSR1", 7), ("10", 7),
                                       ("KILL", 137)])
def test_kill_sends_the_signal(box: Box, sig: str, code: int) -> None:
    cid = start(box, "busybox", "sh", "-c", 'trap "exit 7" USR1; while true; do sleep 0.05; done')
    time.sleep(0.2)
    box.ok("kill", "-s", sig, cid)
    assert box.ok("wait", cid).strip() == str(code)


def test_wait_prints_each_exit_code(box: Box) -> None:
    a = start(box, "busybox", "sh", "-c", "sleep 0.3; exit 3")
    b = start(box, "busybox", "sh", "-c", "exit 4")
    assert box.ok("wait", a, b).split() == ["3", "4"]


def test_restart_runs_it_again(box: Box) -> None:
    cid = start(box, "busybox", "sleep", "60", name="again")
    pid1 = box.inspect(cid, "{{.State.Pid}}")
    started1 = box.inspect(cid, "{{.State.StartedAt}}")
    assert box.ok("restart", "-t", "1", "again").strip() == "again"
    assert box.inspect(cid, "{{.State.Running}}") == "true"
    assert box.inspect(cid, "{{.State.Pid}}") != pid1
    assert box.inspect(cid, "{{.State.StartedAt}}") > started1
    assert not alive(int(pid1))
    assert len(cgroup_dirs(cid)) >= (1 if pure_v2() else 6)  # one group on v2


def test_rm_force_of_a_running_container_removes_everything(box: Box) -> None:
    cid = start(box, "busybox", "sh", "-c", "sleep 60 & sleep 60")
    pid = int(box.inspect(cid, "{{.State.Pid}}"))
    monitor = int(box.inspect(cid, "{{.Box.MonitorPid}}"))
    assert cgroup_dirs(cid)
    assert box.ok("rm", "-f", cid).strip() == cid
    assert cgroup_dirs(cid) == []
    assert not alive(pid) and not alive(monitor)
    for path in (box.root / "containers" / cid, box.root / "overlay2" / cid,
                 box.exec_root / "containers" / cid):
        assert not path.exists(), path
    assert box("inspect", cid).returncode == 1


def test_on_failure_restarts_up_to_the_count(box: Box) -> None:
    cid = start(box, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 5")
    wait_for(lambda: box.inspect(cid, "{{.State.Status}}") == "exited"
             and box.inspect(cid, "{{.RestartCount}}") == "2", what="two restarts")
    time.sleep(0.5)  # and no third one
    assert box.inspect(cid, "{{.RestartCount}} {{.State.ExitCode}} {{.State.Status}}") == \
        "2 5 exited"
    assert box.ok("logs", cid) == ""


def test_on_failure_does_not_restart_a_success(box: Box) -> None:
    cid = start(box, "--restart", "on-failure", "busybox", "sh", "-c", "echo once")
    assert box.ok("wait", cid).strip() == "0"
    time.sleep(0.4)
    assert box.inspect(cid, "{{.RestartCount}} {{.State.Status}}") == "0 exited"
    assert box.ok("logs", cid) == "once\n"


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_always_restarts_until_stopped(box: Box, policy: str) -> None:
    cid = start(box, "--restart", policy, "busybox", "sh", "-c", "echo run; sleep 0.1")
    wait_for(lambda: int(box.inspect(cid, "{{.RestartCount}}")) >= 2, what="restarts")
    box.ok("stop", "-t", "1", cid)
    count = box.inspect(cid, "{{.RestartCount}}")
    time.sleep(0.6)
    assert box.inspect(cid, "{{.State.Status}}") == "exited"
    assert box.inspect(cid, "{{.RestartCount}}") == count
    assert box.inspect(cid, "{{.Box.MonitorPid}}") in ("<no value>", "")
    # Docker counts restarts that happened: every run but the first is one.
    assert box.ok("logs", cid).count("run\n") == int(count) + 1


def test_no_restart_policy(box: Box) -> None:
    cid = start(box, "--restart", "no", "busybox", "sh", "-c", "exit 1")
    assert box.ok("wait", cid).strip() == "1"
    time.sleep(0.3)
    assert box.inspect(cid, "{{.RestartCount}} {{json .HostConfig.RestartPolicy}}") == \
        '0 {"Name":"no","MaximumRetryCount":0}'


def test_concurrent_commands_on_one_container(box: Box) -> None:
    cid = start(box, "busybox", "sleep", "60")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BOX, *args], capture_output=True, text=True, env=box.env,
                              stdin=subprocess.DEVNULL, timeout=30)

    jobs = [("stop", "-t", "1", cid)] * 5 + [("ps", "-a")] * 3 + [("inspect", cid)] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda a: run(*a), jobs))
    for args, proc in zip(jobs, results, strict=True):
        assert proc.returncode == 0, (args, proc.stderr)
    for proc in results[5:8]:
        assert cid[:12] in proc.stdout
    for proc in results[8:]:
        assert json.loads(proc.stdout)[0]["Id"] == cid
    assert box.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    # the state file is whole JSON, and the container starts again
    json.loads((box.root / "containers" / cid / "config.v2.json").read_text())
    box.ok("start", cid)
    assert box.inspect(cid, "{{.State.Running}}") == "true"


def test_concurrent_starts_start_one_process(box: Box) -> None:
    cid = box.ok("create", "busybox", "sleep", "60").strip()
    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(lambda _: box("start", cid).returncode, range(5)))
    assert codes == [0] * 5
    pids = (controller_group("pids", cid) / "cgroup.procs").read_text().split()
    assert len(pids) == 1


def test_monitor_killed_with_sigkill(box: Box) -> None:
    cid = start(box, "busybox", "sleep", "60")
    monitor = int(box.inspect(cid, "{{.Box.MonitorPid}}"))
    pid = int(box.inspect(cid, "{{.State.Pid}}"))
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not alive(monitor), what="monitor gone")
    status = box.ok("ps", "-a", "--format", "{{.Status}}").strip()
    assert status == "Dead" or status.startswith("Exited"), status
    assert box.inspect(cid, "{{.State.Running}}") == "false"
    assert box.ok("ps", "-q") == ""
    assert box.ok("rm", cid).strip() == cid
    assert cgroup_dirs(cid) == []
    assert not alive(pid)
    assert not (box.root / "containers" / cid).exists()
    assert not (box.root / "overlay2" / cid).exists()


def test_rm_destroys_cgroups_a_monitor_died_before_recording(box: Box) -> None:
    """The monitor records CgroupPaths with the running state: one killed between making
    box/<id> and that write leaves a group with no record, which rm finds by name."""
    from runtime.cgroups import open_driver
    from runtime.cgroups.base import Resources

    cid = box.ok("create", "busybox", "true").strip()
    driver = open_driver()
    paths = driver.create(f"box/{cid}", Resources())
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        driver.attach(paths, sleeper.pid)
        doc_path = box.root / "containers" / cid / "config.v2.json"
        doc = json.loads(doc_path.read_text())
        dead = subprocess.Popen(["true"])
        dead.wait()
        doc["Box"] = {**(doc.get("Box") or {}), "MonitorPid": dead.pid, "MonitorStart": 1}
        doc_path.write_text(json.dumps(doc))
        assert cgroup_dirs(cid) != []
        assert box.ok("rm", cid).strip() == cid
        assert cgroup_dirs(cid) == []
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
    finally:
        sleeper.kill()
        sleeper.wait()
        for d in cgroup_dirs(cid):
            d.rmdir()
