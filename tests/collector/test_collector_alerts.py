"""The instant OOM alert: a real v1 group OOM-killed under the watcher reaches a webhook
within a fraction of a second carrying limit, peak and the last log lines; the v2 path
(inotify on memory.events) on a fixture tree; Alertmanager's v2 API accepts the alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from cgroupstats.model import ContainerRef
from collector.alerts import (
    LOG_LINES,
    AlertError,
    OomAlert,
    OomWatcher,
    Sender,
    payload,
    tail_log,
)
from tests.collector.conftest import Group
from tests.grafana.stack import Alertmanager
from tests.support.servers import Reply, scripted_http
from tests.support.wait import wait_until as wait

MiB = 1 << 20
HOG = ["/bin/busybox", "sh", "-c", "x=a; while true; do x=$x$x; done"]


def state_with_log(tmp: Path, lines: int) -> str:
    """A config.v2.json whose LogPath is a json-file log of ``lines`` lines."""
    log = tmp / "c-json.log"
    with open(log, "wb") as f:
        for i in range(lines):
            f.write(orjson.dumps({"log": f"line {i}\n", "stream": "stderr" if i % 2 else "stdout",
                                  "time": f"2025-01-01T00:00:{i % 60:02d}.000000001Z"}) + b"\n")
    state = tmp / "config.v2.json"
    state.write_bytes(
        orjson.dumps({"ID": "c" * 64, "LogPath": str(log), "State": {"Running": True}})
    )
    return str(state)


def test_v1_oom_kill_reaches_the_webhook_at_once(v1_group: Callable[..., Group],
                                                  tmp_path: Path) -> None:
    g = v1_group()
    g.write("memory", "memory.limit_in_bytes", str(16 * MiB))
    ref = ContainerRef("c" * 64, "hog", "busybox:latest", g.name, 1, g.paths,
                       state_file=state_with_log(tmp_path, 30))
    with scripted_http() as hook:
        watcher = OomWatcher(Sender(hook.url + "/hook"), host="node1")
        watcher.start()
        try:
            watcher.sync({ref.id: ref})
            assert watcher.watched == 1
            proc = g.spawn(HOG)
            proc.wait(30)
            killed = time.monotonic()
            assert proc.returncode == -9
            wait(lambda: hook.requests("/hook"))
        finally:
            watcher.close()
        got = hook.requests("/hook")
    assert len(got) == 1
    assert got[0].at - killed < 0.5  # measured from after wait() returned: an upper bound
    doc = json.loads(got[0].body)
    assert doc["alert"] == "oom_kill" and doc["oom_kills"] == 1 and doc["host"] == "node1"
    assert doc["container"] == {"name": "hog", "id": "c" * 64, "image": "busybox:latest",
                                "cgroup": g.name}
    assert doc["memory_limit_bytes"] == 16 * MiB
    assert 12 * MiB < doc["memory_peak_bytes"] <= 16 * MiB
    assert [e["log"] for e in doc["logs"]] == [f"line {i}" for i in range(10, 30)]
    assert doc["logs"][-1]["stream"] == "stderr"
    assert "hog" in doc["summary"] and "16.0 MiB limit" in doc["description"]


def test_a_wakeup_without_a_kill_sends_nothing(v1_group: Callable[..., Group]) -> None:
    """The eventfd also fires when the group is removed: no alert for that."""
    g = v1_group()
    ref = ContainerRef("d" * 64, "quiet", "busybox", g.name, 1, g.paths)
    sent: list[OomAlert] = []
    watcher = OomWatcher(sent.append)
    watcher.start()
    try:
        watcher.sync({ref.id: ref})
        g.remove()
        time.sleep(0.3)
        assert sent == []
    finally:
        watcher.close()


def v2_tree(tmp_path: Path, kills: int = 0) -> ContainerRef:
    d = tmp_path / "unified" / "box" / "e2"
    d.mkdir(parents=True)
    (d / "memory.events").write_text(f"low 0\nhigh 0\nmax 3\noom 1\noom_kill {kills}\n")
    (d / "memory.max").write_text(f"{32 * MiB}\n")
    (d / "memory.peak").write_text(f"{31 * MiB}\n")
    return ContainerRef("e" * 64, "v2box", "img", "/box/e2", 2, {"unified": str(d)},
                        started_at=time.time())


def test_v2_memory_events_through_inotify(tmp_path: Path) -> None:
    ref = v2_tree(tmp_path)
    events = Path(ref.unified_path, "memory.events")
    sent: list[OomAlert] = []
    watcher = OomWatcher(sent.append, host="h")
    watcher.start()
    try:
        watcher.sync({ref.id: ref})
        events.write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 0\n")  # a change, no kill
        time.sleep(0.2)
        assert sent == []
        events.write_text("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n")
        wait(lambda: sent)
    finally:
        watcher.close()
    assert len(sent) == 1
    assert (sent[0].oom_kills, sent[0].memory_limit, sent[0].memory_peak) == (1, 32 * MiB, 31 * MiB)


def test_killed_before_the_first_scan_is_alerted_only_when_fresh(tmp_path: Path) -> None:
    fresh = v2_tree(tmp_path / "a", kills=1)
    old = ContainerRef("f" * 64, "old", "img", "/box/old", 2,
                       {"unified": v2_tree(tmp_path / "b", kills=2).unified_path},
                       started_at=time.time() - 3600)
    sent: list[OomAlert] = []
    watcher = OomWatcher(sent.append)
    try:
        watcher.sync({fresh.id: fresh, old.id: old})
        assert [a.ref.name for a in sent] == ["v2box"]
    finally:
        watcher.close()


def test_sync_follows_the_container_set_and_close_releases_every_fd(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    refs = {}
    for i in range(5):
        r = v2_tree(tmp_path / str(i))
        refs[str(i)] = ContainerRef(str(i) * 64, f"c{i}", "img", r.cgroup, 2, r.cgroup_paths)
    watcher = OomWatcher(lambda a: None)
    watcher.start()
    watcher.sync({r.id: r for r in refs.values()})
    assert watcher.watched == 5
    watcher.sync({refs["0"].id: refs["0"]})
    assert watcher.watched == 1
    watcher.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_tail_log_keeps_the_last_lines_and_raw_garbage(tmp_path: Path) -> None:
    state = state_with_log(tmp_path, 100)
    log = Path(orjson.loads(Path(state).read_bytes())["LogPath"])
    with open(log, "ab") as f:
        f.write(b"not json at all\n")
    tail = tail_log(str(log))
    assert len(tail) == LOG_LINES
    assert tail[-1] == {"time": "", "stream": "", "log": "not json at all"}
    assert tail[-2]["log"] == "line 99"
    assert tail_log(str(tmp_path / "missing")) == []


def alert(name: str = "web") -> OomAlert:
    ref = ContainerRef("a" * 64, name, "nginx:1", "/box/a", 1, {})
    return OomAlert(time.time_ns(), ref, "node1", 1, 64 * MiB, 63 * MiB,
                    [{"time": "t", "stream": "stdout", "log": "hello"}])


def test_alertmanager_v2_api_accepts_the_alert() -> None:
    with scripted_http() as hook, Alertmanager(hook.url + "/am") as am:
        sender = Sender(am.url + "/api/v2/alerts")
        assert sender.alertmanager
        sender.post(payload(alert("web"), True))
        with urllib.request.urlopen(am.url + "/api/v2/alerts", timeout=5) as resp:
            listed = json.load(resp)
        assert [a["labels"]["container_name"] for a in listed] == ["web"]
        got = listed[0]
        assert got["labels"]["alertname"] == "ContainerOOMKilled"
        assert got["annotations"]["memory_limit_bytes"] == str(64 * MiB)
        assert "t stdout: hello" in got["annotations"]["logs"]
        # and Alertmanager routes it on to its receiver
        posted = wait(lambda: hook.requests("/am"), 10)
        assert json.loads(posted[0].body)["alerts"][0]["labels"]["container_name"] == "web"


def test_a_failing_receiver_is_retried() -> None:
    with scripted_http() as hook:
        hook.script("/hook", Reply(500, "busy"), Reply(200))
        sender = Sender(hook.url + "/hook", retries=2)
        sender.start()
        sender.put(alert())
        sender.close()
        assert (sender.sent, sender.errors) == (1, 0)
        assert len(hook.requests("/hook")) == 2


def test_bad_webhook_url_is_refused() -> None:
    with pytest.raises(AlertError, match="ftp://x"):
        Sender("ftp://x/hook")
    proc = subprocess.run([str(Path(sys.executable).parent / "boxwatch"), "collector",
                           "--listen", "", "--root", "/nonexistent", "--alert-webhook", "ftp://x"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "ftp://x" in proc.stderr
