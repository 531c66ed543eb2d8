"""A running container gone silent: its state file still says running, its cgroup can no
longer be read. The collector must keep exporting the running marker
(``container_state_running`` / ``container_state``) while its samples stop, which is what
the ``ContainerSilent`` rule (``marker unless container_last_seen``) needs."""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cgroupstats.model import ContainerRef, Sample
from collector.discover import Discovery
from collector.lineproto import Encoder
from collector.pipeline import Pipeline
from collector.sinks.base import Sink
from collector.sinks.prometheus import PrometheusSink
from tests.collector.test_collector_prometheus import cadvisor_types

CGROUP_ROOT = Path("/sys/fs/cgroup")


class StateSink(Sink):
    """Keeps what ``write_states`` is given, encoded as the Influx sinks encode it."""

    name = "states"

    def __init__(self) -> None:
        self.encoder = Encoder("testhost")
        self.lines: list[str] = []

    def write(self, samples: list[Sample]) -> None:
        return None

    def write_states(self, refs: list[ContainerRef], time_ns: int) -> None:
        self.lines = [self.encoder.state(ref, time_ns) for ref in refs]


def _series(text: bytes, name: str, cid: str) -> list[float]:
    return [s.value for fam in text_string_to_metric_families(text.decode())
            for s in fam.samples if s.name == name and s.labels.get("id") == f"/box/{cid}"]


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as f:  # a zombie counts as gone from its cgroup
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return True
        time.sleep(0.02)
    return False


def _rmdir_groups(cid: str, timeout: float = 5.0) -> list[Path]:
    """Remove every ``<ctrl>/box/<id>`` group behind the runtime's back (EBUSY while the
    killed tasks are still leaving it: retried)."""
    dirs = [d for d in CGROUP_ROOT.glob(f"*/box/{cid}") if d.is_dir()]
    deadline = time.monotonic() + timeout
    for d in dirs:
        while True:
            try:
                d.rmdir()
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    return dirs


def test_collector_silent_container_keeps_running_marker(box) -> None:
    cid = box.ok("run", "-d", "--name", "hush", "busybox", "sleep", "60").strip()
    quit_ = box.ok("run", "-d", "--name", "quits", "busybox", "sleep", "0.5").strip()
    prom, states = PrometheusSink(), StateSink()
    pipe = Pipeline(Discovery([box.root], str(CGROUP_ROOT)), [prom, states])
    registry = CollectorRegistry()
    registry.register(prom)
    try:
        pipe.tick()
        text = prom.render()
        assert text == cadvisor_types(generate_latest(registry))
        assert _series(text, "container_state_running", cid) == [1.0]
        assert len(_series(text, "container_last_seen", cid)) == 1
        assert _series(text, "container_state_running", quit_) == [1.0]
        mine = [ln for ln in states.lines if f"container_id={cid}" in ln]
        assert len(mine) == 1 and mine[0].startswith("container_state,")
        assert "container_name=hush" in mine[0] and " running=1i " in mine[0]

        # Silent: monitor first (so nothing rewrites the state), then the container's
        # init, then its groups; config.v2.json keeps saying "Running".
        config = box.root / "containers" / cid / "config.v2.json"
        doc = json.loads(config.read_text())
        monitor, init = doc["Box"]["MonitorPid"], doc["State"]["Pid"]
        os.kill(monitor, signal.SIGKILL)
        assert _gone(monitor)
        os.kill(init, signal.SIGKILL)
        assert _gone(init)
        assert _rmdir_groups(cid)
        assert json.loads(config.read_text())["State"]["Running"] is True

        for _ in range(2):  # the read that finds the group gone, and the one after
            samples = pipe.tick()
            assert cid not in {s.ref.id for s in samples}
            text = prom.render()
            assert text == cadvisor_types(generate_latest(registry))
            assert _series(text, "container_state_running", cid) == [1.0]
            assert _series(text, "container_last_seen", cid) == []
            assert _series(text, "container_memory_usage_bytes", cid) == []
            assert [ln for ln in states.lines if f"container_id={cid}" in ln]
        assert pipe.stats.gone_total >= 1

        # A container that stops on purpose: its state says so, the marker goes with its
        # samples, so the rule has nothing to fire on.
        deadline = time.monotonic() + 10
        while box.inspect(quit_, "{{.State.Running}}") != "false":
            assert time.monotonic() < deadline, "quits did not exit"
            time.sleep(0.1)
        pipe.tick()
        text = prom.render()
        assert _series(text, "container_state_running", quit_) == []
        assert _series(text, "container_last_seen", quit_) == []
        assert not [ln for ln in states.lines if f"container_id={quit_}" in ln]
        assert _series(text, "container_state_running", cid) == [1.0]
    finally:
        pipe.close()
        box("rm", "-f", cid, quit_, timeout=60)
    # removed: the state file goes, and with it the marker (a stopped container is not silent)
    pipe = Pipeline(Discovery([box.root], str(CGROUP_ROOT)), [prom, states])
    try:
        pipe.tick()
        assert _series(prom.render(), "container_state_running", cid) == []
        assert not [ln for ln in states.lines if f"container_id={cid}" in ln]
    finally:
        pipe.close()
    assert not list(CGROUP_ROOT.glob(f"*/box/{cid}"))
