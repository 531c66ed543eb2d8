"""Containers that live less than a scan interval (issue 15, node 1: a Docker container
OOM-killed 4.5 s after its start had no oom_kill event under TCG): their die and oom_kill
come from the state file, once; a kill counted before a new container's first sample is
still an oom_kill. Discovery on a copy of tests/fixtures/docker_root and a fake v2 tree.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cgroupstats.model import CpuStats, MemoryStats, PidsStats, PsiStats, Sample, Spec
from collector.discover import Discovery
from collector.events import EventTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEB = "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"
HOG = "e" * 64
OLD_HOG = "f" * 64


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_state(root: Path, cid: str, name: str, **state: object) -> Path:
    """A Docker-written container directory whose config.v2.json has ``state``."""
    doc = json.loads((root / "containers" / WEB / "config.v2.json").read_text())
    doc.update(ID=cid, Name=f"/{name}", RestartCount=0)
    doc.pop("Box", None)
    doc["LogPath"] = ""
    doc["State"] = {"Running": False, "Paused": False, "Pid": 0, "ExitCode": 0,
                    "OOMKilled": False, "StartedAt": _rfc3339(time.time() - 5),
                    "FinishedAt": "0001-01-01T00:00:00Z", **state}
    directory = root / "containers" / cid
    directory.mkdir(exist_ok=True)
    path = directory / "config.v2.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)  # a new inode, as Docker's atomic write gives
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "docker_root", tmp_path / "docker"))


@pytest.fixture
def cgroups(tmp_path: Path) -> Path:
    cg = tmp_path / "cg"
    (cg / "docker" / WEB).mkdir(parents=True)
    (cg / "cgroup.controllers").write_text("cpu io memory pids\n")
    return cg


def actions(events: list) -> list[tuple[str, str, int | None]]:
    return [(e.ref.name, e.action, e.exit_code) for e in events]


def test_oom_killed_between_two_scans_gives_die_and_oom_kill_once(
    root: Path, cgroups: Path
) -> None:
    discovery, tracker = Discovery([root], cgroups), EventTracker()
    # killed before this collector started: history, not news
    write_state(root, OLD_HOG, "oldhog", OOMKilled=True, ExitCode=137,
                FinishedAt=_rfc3339(time.time() - 60))
    assert tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited) == []
    # started and OOM-killed between two scans: never in a scan, found dead
    path = write_state(root, HOG, "hog", OOMKilled=True, ExitCode=137,
                       FinishedAt=_rfc3339(time.time()))
    refs = discovery.scan()
    assert HOG not in refs
    events = tracker.scanned(refs, time.time_ns(), discovery.exited)
    assert actions(events) == [("hog", "oom_kill", None), ("hog", "die", 137)]
    assert events[0].ref.id == HOG and events[0].ref.state_file == str(path)
    assert tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited) == []
    # Docker rewrites the file (daemon restart, rename): the same ending is not news again
    write_state(root, HOG, "hog", OOMKilled=True, ExitCode=137,
                FinishedAt=json.loads(path.read_text())["State"]["FinishedAt"])
    assert tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited) == []


def test_plain_exit_between_scans_is_a_die_without_oom_kill(root: Path, cgroups: Path) -> None:
    discovery, tracker = Discovery([root], cgroups), EventTracker()
    tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    write_state(root, HOG, "quick", ExitCode=3, FinishedAt=_rfc3339(time.time()))
    events = tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    assert actions(events) == [("quick", "die", 3)]


def test_seen_running_then_dead_is_ended_once(root: Path, cgroups: Path) -> None:
    """The usual path (seen running, then gone) is not doubled by the state-file path."""
    discovery, tracker = Discovery([root], cgroups), EventTracker()
    tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    (cgroups / "docker" / HOG).mkdir()
    write_state(root, HOG, "hog", Running=True, Pid=4242)
    events = tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    assert actions(events) == [("hog", "start", None)]
    (cgroups / "docker" / HOG).rmdir()
    write_state(root, HOG, "hog", OOMKilled=True, ExitCode=137, FinishedAt=_rfc3339(time.time()))
    events = tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    assert actions(events) == [("hog", "oom_kill", None), ("hog", "die", 137)]
    assert tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited) == []


def _sample(ref, oom_kills: int) -> Sample:
    return Sample(time.time_ns(), ref, CpuStats(), MemoryStats(events_oom_kill=oom_kills), {}, {},
                  PidsStats(), PsiStats(), Spec())


def test_kill_before_first_sample_of_a_new_container_is_an_oom_kill(
    root: Path, cgroups: Path
) -> None:
    """The group outlives its process for a while: the first sample of a container that
    started after the collector can already count the kill; it is news, not a baseline.
    A container that ran before the collector started keeps its count as the baseline."""
    discovery, tracker = Discovery([root], cgroups), EventTracker()
    refs = discovery.scan()
    tracker.scanned(refs, time.time_ns(), discovery.exited)
    assert tracker.sampled([_sample(refs[WEB], 2)]) == []  # old kills: not reported
    (cgroups / "docker" / HOG).mkdir()
    write_state(root, HOG, "hog", Running=True, Pid=4242)
    refs = discovery.scan()
    tracker.scanned(refs, time.time_ns(), discovery.exited)
    events = tracker.sampled([_sample(refs[WEB], 2), _sample(refs[HOG], 1)])
    assert actions(events) == [("hog", "oom_kill", None)]
    (cgroups / "docker" / HOG).rmdir()
    write_state(root, HOG, "hog", OOMKilled=True, ExitCode=137, FinishedAt=_rfc3339(time.time()))
    events = tracker.scanned(discovery.scan(), time.time_ns(), discovery.exited)
    assert actions(events) == [("hog", "die", 137)]  # its oom_kill was already said


def test_oom_killed_between_two_scans_is_alerted_once(root: Path, cgroups: Path) -> None:
    """The instant alert for a container no watch ever saw: from its state file, with its
    last log lines; a plain exit is no alert, and the same ending is not alerted twice."""
    from collector.alerts import OomWatcher

    alerts: list = []
    watcher = OomWatcher(alerts.append, host="node")
    try:
        discovery = Discovery([root], cgroups)
        watcher.sync(discovery.scan())
        path = write_state(root, HOG, "hog", OOMKilled=True, ExitCode=137,
                           FinishedAt=_rfc3339(time.time()))
        log = path.parent / f"{HOG}-json.log"
        log.write_text('{"log":"allocating\\n","stream":"stdout","time":"2026-12-04T15:37:47Z"}\n')
        doc = json.loads(path.read_text())
        doc["LogPath"] = str(log)
        path.write_text(json.dumps(doc))
        write_state(root, OLD_HOG, "quick", ExitCode=3, FinishedAt=_rfc3339(time.time()))
        watcher.sync(discovery.scan())
        watcher.ended(discovery.exited)
        assert [(a.ref.name, a.oom_kills) for a in alerts] == [("hog", 1)]
        assert alerts[0].logs[-1]["log"] == "allocating"
        watcher.ended([alerts[0].ref])
        assert len(alerts) == 1
    finally:
        watcher.close()
