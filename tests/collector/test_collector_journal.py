"""The collector's lifecycle events from box's journal (collector.journal) on real
containers: the journal's own times, a start and a die between two scans, pause and
unpause, the derived events kept for roots without a journal, and the paused state in
the records and metrics."""

from __future__ import annotations

import time
from pathlib import Path

from cgroupstats.model import ContainerRef
from collector.journal import OOM_WINDOW_NS, JournalSource
from collector.lineproto import Encoder
from collector.records import Event
from collector.sinks.prometheus import PrometheusSink
from formats import events as journal
from tests.collector.test_collector_pipeline import RecordingSink, _pipeline
from tests.support.wait import poll


def test_lifecycle_comes_from_the_journal_with_its_times(box) -> None:
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink, interval=0.2)
    try:
        pipe.tick()  # baseline
        cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                     "sleep 30").strip()
        box.ok("pause", cid)
        box.ok("unpause", cid)
        box.ok("kill", cid)
        assert poll(lambda: box.inspect(cid, "{{.State.Status}}") == "exited", 15)
        pipe.tick()  # one scan after all of it: nothing lost in between
        assert sink.actions(cid) == [("start", None), ("pause", None), ("unpause", None),
                                     ("die", 137)]
        journaled = {m["Action"]: m["timeNano"] for m in journal.replay(str(box.root))
                     if m["Actor"]["ID"] == cid}
        for e in sink.events:
            if e.ref.id == cid:
                want = {"die": "die", "start": "start"}.get(e.action, e.action)
                assert e.time_ns == journaled[want]
        named = [e for e in sink.events if e.ref.id == cid and e.action == "die"]
        assert named[0].ref.image == "busybox"
    finally:
        pipe.close()


def test_short_lived_container_between_two_scans(box) -> None:
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink)
    try:
        pipe.tick()
        proc = box("run", "--network", "none", "busybox", "sh", "-c", "exit 5")
        assert proc.returncode == 5
        cid = box("ps", "-alq", "--no-trunc").stdout.strip()
        pipe.tick()
        assert sink.actions(cid) == [("start", None), ("die", 5)]
    finally:
        pipe.close()


def test_an_oom_kill_the_container_survives_is_reported_once(box) -> None:
    # docker reports "oom" for any kill in the container; only the counters see this one
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink, interval=0.2)
    try:
        cid = box.ok("run", "-d", "--network", "none", "-m", "32m", "--memory-swap", "32m",
                     "busybox", "sh", "-c",
                     "sleep 1; dd if=/dev/zero of=/dev/shm/f bs=1M count=64; sleep 30").strip()
        pipe.tick()  # baseline: the counter before the kill
        assert poll(lambda: (pipe.tick(), ("oom_kill", None) in sink.actions(cid))[1], 20)
        for _ in range(5):
            pipe.tick()
        assert sink.actions(cid).count(("oom_kill", None)) == 1
        assert box.inspect(cid, "{{.State.Status}}") == "running"
        box.ok("rm", "-f", cid)
    finally:
        pipe.close()


def test_a_container_killed_by_the_oom_killer_has_one_oom_kill(box) -> None:
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink, interval=0.2)
    try:
        pipe.tick()
        cid = box.ok("run", "-d", "--network", "none", "-m", "32m", "--memory-swap", "32m",
                     "busybox", "sh", "-c",
                     "sleep 1; exec dd if=/dev/zero of=/dev/shm/f bs=1M count=64").strip()
        assert poll(lambda: (pipe.tick(), ("die", 137) in sink.actions(cid)
                             or ("die", 1) in sink.actions(cid))[1], 20), sink.actions(cid)
        for _ in range(3):
            pipe.tick()
        # seen by a sample, by the monitor's journal, or both: one event
        assert sink.actions(cid).count(("oom_kill", None)) == 1, sink.actions(cid)
        box.ok("rm", "-f", cid)
    finally:
        pipe.close()


def test_each_journaled_kill_is_one_event_and_a_counter_report_pairs_with_one(
        tmp_path: Path) -> None:
    """box's monitor journals every kill as it happens; a sample's counter rise (one
    event however many kills it spans) pairs with one of them within the window, never
    with a report of its own source: two kills 0.1 s apart stay two events."""
    root = str(tmp_path)
    journal.append(root, "container", "start", "c1", {"name": "hog"})  # journal exists
    source = JournalSource([tmp_path])
    ref = ContainerRef(id="c1", name="hog", image="busybox", cgroup="/box/c1",
                       cgroup_version=1, cgroup_paths={},
                       state_file=f"{root}/containers/c1/config.v2.json", source="box")
    assert source.covers(ref)
    t = time.time_ns()
    # the samples saw the first kill before the journal was read: reported from them
    assert source.sampled([Event(t, ref, "oom_kill")]) == [Event(t, ref, "oom_kill")]
    journal.append(root, "container", "oom", "c1", {"name": "hog"})
    journal.append(root, "container", "oom", "c1", {"name": "hog"})
    got = source.poll({"c1": ref})
    assert [e.action for e in got] == ["oom_kill"]  # the 1st paired, the 2nd is news
    journal.append(root, "container", "oom", "c1", {"name": "hog"})  # a 3rd kill
    assert [e.action for e in source.poll({"c1": ref})] == ["oom_kill"]
    later = time.time_ns()
    assert source.sampled([Event(later, ref, "oom_kill")]) == []  # pairs with the 3rd
    # outside the window a counter report is news again
    far = later + OOM_WINDOW_NS + 1
    assert source.sampled([Event(far, ref, "oom_kill")]) == [Event(far, ref, "oom_kill")]
    source.close()


def test_roots_without_a_journal_keep_the_derived_events(tmp_path: Path) -> None:
    source = JournalSource([tmp_path])
    assert source.poll({}) == [] and not source.covers_any()
    # a journal that appears later is read from its start; one there at the start from
    # its end (a restarted collector reports no history)
    journal.append(str(tmp_path), "container", "start", "c1", {"name": "one"})
    got = source.poll({})
    assert [(e.action, e.ref.id, e.ref.name) for e in got] == [("start", "c1", "one")]
    assert source.covers_any()
    again = JournalSource([tmp_path])
    assert again.poll({}) == []
    journal.append(str(tmp_path), "container", "die", "c1", {"exitCode": "2"})
    journal.append(str(tmp_path), "container", "create", "c2", {})  # not a lifecycle one
    assert [(e.action, e.exit_code) for e in again.poll({})] == [("die", 2)]
    source.close()
    again.close()


def test_paused_state_in_refs_and_metrics(box) -> None:
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink)
    prom = PrometheusSink()
    try:
        cid = box.ok("run", "-d", "--network", "none", "--name", "cj-paused", "busybox",
                     "sleep", "30").strip()
        box.ok("pause", cid)
        pipe.tick()
        ref = pipe.running[cid]
        assert ref.paused
        prom.write_states([ref], 0)
        prom.write([])
        text = prom.render().decode()
        paused = [x for x in text.splitlines() if x.startswith("container_state_paused{")
                  and cid in x]
        assert len(paused) == 1 and paused[0].rsplit(" ", 1)[1] in ("1", "1.0")
        line = Encoder().state(ref, 1)
        assert line.endswith(" running=1i,paused=1i 1")
        box.ok("unpause", cid)
        pipe.tick()
        assert not pipe.running[cid].paused
        assert Encoder().state(pipe.running[cid], 1).endswith(" running=1i 1")
        assert ("pause", None) in sink.actions(cid) and ("unpause", None) in sink.actions(cid)
    finally:
        pipe.close()


def test_spec_metrics_follow_box_update(box) -> None:
    sink = RecordingSink()
    pipe = _pipeline([box.root], sink, spec_every=1)
    try:
        cid = box.ok("run", "-d", "--network", "none", "-m", "32m", "busybox", "sleep",
                     "30").strip()
        pipe.tick()
        spec = [s for s in sink.batches[-1] if s.ref.id == cid][0].spec
        assert spec.memory_limit == 32 << 20
        box.ok("update", "-m", "64m", "--memory-swap", "128m", "--pids-limit", "77", cid)
        pipe.tick()
        sample = [s for s in sink.batches[-1] if s.ref.id == cid][0]
        assert sample.spec.memory_limit == 64 << 20
        assert sample.pids.max == 77
    finally:
        pipe.close()
