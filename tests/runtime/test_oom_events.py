"""Every OOM kill in a running container is one ``oom`` event when it happens
(runtime.oomwatch), as docker reports them: a child killed while PID 1 lives on, PID 1
itself (``oom`` then ``die``), State.OOMKilled set at once and kept after the exit (moby
57d2d6ef). Real containers on this host's driver; the watcher alone on a real group, and
on fixture trees for the v2 inotify path and the polling fallback."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from formats import events as journal
from formats.units import parse_rfc3339
from runtime.cgroups import driver_for, open_driver
from runtime.cgroups.base import Resources
from runtime.cgroups.v1 import V1Driver
from runtime.cgroups.v2 import V2Driver
from runtime.oomwatch import POLL_MS, OomWatch
from runtime.paths import Paths
from runtime.state import Store
from tests.conftest import Box
from tests.support.wait import wait_until

MiB = 1 << 20
# Each subshell's `tail` buffers /dev/zero until the 32 MiB group kills it; PID 1 lives on.
TWO_KILLS = "for i in 1 2; do (tail /dev/zero); echo killed; sleep 1; done; sleep 30"


def since() -> str:
    return f"{time.time_ns() // 1000 / 1e6:.6f}"


def events(box: Box, t0: str, name: str) -> list[dict]:
    out = box.ok("events", "--since", t0, "--until", since(), "--filter", f"container={name}",
                 "--format", "{{json .}}")
    return [json.loads(line) for line in out.splitlines()]


def oom_kills(box: Box, name: str) -> int:
    """The group's own counter, read through the driver the runtime chose for it."""
    version = int(box.inspect(name, "{{.Box.CgroupVersion}}"))
    paths = json.loads(box.inspect(name, "{{json .Box.CgroupPaths}}"))
    return driver_for(version).oom_kills(paths)


def log_times(box: Box, name: str, text: str) -> list[int]:
    """The json-file times (ns) of the lines ``text``: when the monitor read them."""
    path = box.inspect(name, "{{.LogPath}}")
    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    return [parse_rfc3339(x["time"]) for x in lines if x["log"] == text + "\n"]


def test_each_kill_the_container_survives_is_one_oom_event_when_it_happens(box: Box) -> None:
    t0 = since()
    box.ok("run", "-d", "--network", "none", "--name", "oomev1", "-l", "team=red",
           "-m", "32m", "--memory-swap", "32m", "busybox", "sh", "-c", TWO_KILLS)
    wait_until(lambda: len(log_times(box, "oomev1", "killed")) == 2, 30, "two kills",
               seen=lambda: box.ok("logs", "oomev1"))
    kills = oom_kills(box, "oomev1")
    assert kills >= 2
    # moby's EventOOM: OOMKilled at once, while the container still runs
    assert box.inspect("oomev1", "{{.State.Status}} {{.State.OOMKilled}}") == "running true"
    got = events(box, t0, "oomev1")
    ooms = [e for e in got if e["Action"] == "oom"]
    assert len(ooms) == kills, got
    cid = box.inspect("oomev1", "{{.Id}}")
    assert ooms[0]["Type"] == "container" and ooms[0]["Actor"] == {
        "ID": cid, "Attributes": {"image": "busybox", "name": "oomev1", "team": "red"}}
    assert ooms[0]["status"] == "oom" and ooms[0]["from"] == "busybox"
    # at the kill, not at a poll or at the exit: each within 0.5 s of the shell's
    # "killed" line (the copy loop stamps it as it reads it); the kills are 1 s apart
    for oom, line in zip(ooms[-2:], log_times(box, "oomev1", "killed"), strict=True):
        assert abs(oom["timeNano"] - line) < 0.5e9, (oom["timeNano"], line)
    only = box.ok("events", "--since", t0, "--until", since(), "--filter", "event=oom",
                  "--filter", "container=oomev1").splitlines()
    assert len(only) == kills and all(" container oom " in x for x in only)
    box.ok("kill", "oomev1")
    box.ok("wait", "oomev1")
    actions = [e["Action"] for e in events(box, t0, "oomev1")]
    assert actions.count("oom") == kills, actions  # the death-time check adds none
    assert actions[-1] == "die", actions
    assert box.inspect("oomev1", "{{.State.OOMKilled}}") == "true"  # kept after the exit


def test_a_child_kill_then_a_clean_exit_and_the_next_start_clears_oomkilled(box: Box) -> None:
    t0 = since()
    script = "[ -f /ran ] && exit 0; touch /ran; (tail /dev/zero); echo killed; exit 0"
    assert box("run", "--network", "none", "--name", "oomev2", "-m", "32m",
               "--memory-swap", "32m", "busybox", "sh", "-c", script).returncode == 0
    actions = [e["Action"] for e in events(box, t0, "oomev2")]
    assert actions.count("oom") == 1 and actions[-1] == "die", actions
    assert actions.index("oom") > actions.index("start")
    assert box.inspect("oomev2", "{{.State.ExitCode}} {{.State.OOMKilled}}") == "0 true"
    box.ok("start", "-a", "oomev2")  # no kill this run: moby's setRunning cleared it
    assert box.inspect("oomev2", "{{.State.ExitCode}} {{.State.OOMKilled}}") == "0 false"
    assert [e["Action"] for e in events(box, t0, "oomev2")].count("oom") == 1


def test_pid1_killed_gives_one_oom_then_die(box: Box) -> None:
    t0 = since()
    assert box("run", "--network", "none", "--name", "oomev3", "-m", "16m",
               "--memory-swap", "16m", "busybox", "tail", "/dev/zero").returncode == 137
    actions = [e["Action"] for e in events(box, t0, "oomev3")]
    assert actions[-2:] == ["oom", "die"] and actions.count("oom") == 1, actions
    assert box.inspect("oomev3", "{{.State.ExitCode}} {{.State.OOMKilled}}") == "137 true"


def test_a_child_killed_otherwise_is_no_oom(box: Box) -> None:
    t0 = since()
    assert box("run", "--network", "none", "--name", "oomev4", "-m", "32m", "busybox", "sh",
               "-c", "sleep 30 & kill -9 $!; wait; exit 3").returncode == 3
    assert "oom" not in [e["Action"] for e in events(box, t0, "oomev4")]
    assert box.inspect("oomev4", "{{.State.OOMKilled}}") == "false"


# -- the watcher alone ------------------------------------------------------------------

def _store(tmp_path: Path) -> Store:
    return Store(Paths(tmp_path / "root", tmp_path / "run"))


CFG = {"ID": "c0ffee", "Name": "/watched", "Config": {"Image": "busybox"}}


def _ooms(store: Store) -> list[dict]:
    return [m for m in journal.replay(store.paths.root) if m["Action"] == "oom"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_the_hosts_driver_notifies_and_the_event_follows_the_kill(tmp_path: Path) -> None:
    """On this host's driver (v1 here: the eventfd) the watcher is woken, not polling,
    and journals the kill within 0.25 s of the victim being reaped."""
    driver = open_driver()
    group = f"box/test-oomw-{uuid.uuid4().hex[:8]}"
    paths = driver.create(group, Resources(memory=16 * MiB, memory_swap=16 * MiB))
    store = _store(tmp_path)
    try:
        watch = OomWatch(store, driver, paths, driver.oom_kills(paths), CFG)
        assert watch.notifying
        proc = subprocess.Popen(["tail", "/dev/zero"], stdout=subprocess.DEVNULL,
                                preexec_fn=lambda: driver.attach(paths, os.getpid()))
        assert proc.wait(timeout=30) == -9
        reaped = time.time_ns()
        got = wait_until(lambda: _ooms(store), 5, "the oom event")
        assert abs(got[0]["timeNano"] - reaped) < 0.25e9
        assert watch.stop() == 1 and len(_ooms(store)) == 1  # stop() journals no second
        assert got[0]["Actor"] == {"ID": "c0ffee",
                                   "Attributes": {"image": "busybox", "name": "watched"}}
    finally:
        driver.destroy(paths)
    assert not any(os.path.exists(p) for p in paths.values())


def _v2_group(tmp_path: Path, kills: int) -> tuple[V2Driver, dict[str, str], Path]:
    group = tmp_path / "cg" / "box" / "c0ffee"
    group.mkdir(parents=True)
    events_file = group / "memory.events"
    events_file.write_text(f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {kills}\n")
    return V2Driver(str(tmp_path / "cg")), {"unified": str(group)}, events_file


def test_v2_memory_events_wake_the_watcher(tmp_path: Path) -> None:
    driver, paths, events_file = _v2_group(tmp_path, 3)
    store = _store(tmp_path)
    watch = OomWatch(store, driver, paths, 3, CFG)  # 3 kills before this run: not news
    try:
        assert watch.notifying
        time.sleep(0.1)
        assert _ooms(store) == []
        t = time.monotonic()
        events_file.write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 5\n")
        wait_until(lambda: len(_ooms(store)) == 2, 5, "two oom events")
        assert time.monotonic() - t < POLL_MS / 1000 / 2  # woken by inotify, not polled
    finally:
        assert watch.stop() == 2
    assert len(_ooms(store)) == 2


def test_without_notification_the_counter_is_polled(tmp_path: Path) -> None:
    """A v1 group whose ``cgroup.event_control`` cannot be written (here: absent)."""
    group = tmp_path / "memory" / "box" / "c0ffee"
    group.mkdir(parents=True)
    control = group / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    driver = V1Driver(str(tmp_path), proc_root=str(tmp_path / "proc"))
    store = _store(tmp_path)
    watch = OomWatch(store, driver, {"memory": str(group)}, 0, CFG)
    try:
        assert not watch.notifying
        control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
        wait_until(lambda: _ooms(store), POLL_MS / 1000 * 3, "the polled oom event")
        control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    finally:
        assert watch.stop() == 2  # the last one read at the stop, not lost
    assert len(_ooms(store)) == 2
