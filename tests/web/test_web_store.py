"""The remote live tail (``boxwatch.web.storetail``) against a real influxd: entries of a
container on another host, read in polls from any position, come out once each and in
order, entries sharing a nanosecond included; what is newer than the watermark waits.
And the health events read from a state file (``boxwatch.web.stateevents``)."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from boxwatch.logs.influx import InfluxLogs
from boxwatch.web import stateevents
from boxwatch.web.storetail import SETTLE_NS, Selection, StoreTail
from formats.lineproto import line, tag_set
from formats.units import rfc3339nano
from tests.support.servers import Influxd, influxd


@pytest.fixture(scope="module")
def server() -> Iterator[Influxd]:
    with influxd() as s:
        post(s.url + "/query", {"q": "CREATE DATABASE logs"})
        yield s


def post(url: str, params: dict[str, str], body: bytes = b"") -> None:
    req = urllib.request.Request(url + "?" + urllib.parse.urlencode(params), data=body,
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def write_logs(url: str, entries: list[tuple[int, str, str, str, str]]) -> None:
    """(time_ns, host, container, stream, message) as the shipper writes them."""
    text = "\n".join(
        str(line("container_logs", tag_set([("host", h), ("container_name", c),
                                            ("stream", s)]), {"message": m}, t))
        for t, h, c, s, m in entries)
    post(url + "/write", {"db": "logs", "precision": "ns"}, text.encode())


def test_a_remote_tail_resumes_from_every_position_exactly(server: Influxd) -> None:
    base = time.time_ns() - 60 * 10**9
    entries = []
    for i in range(40):
        t = base + (i // 2) * 10**6  # pairs share a nanosecond (stderr sorts first)
        entries.append((t, "node2", "web", "stderr" if i % 2 == 0 else "stdout", f"msg {i}"))
    entries.append((base, "node3", "web", "stdout", "another host's web"))
    entries.append((base, "node2", "db", "stdout", "another container"))
    write_logs(server.url, entries)
    store = InfluxLogs(server.url, "logs", timeout=10)
    sel = Selection("web", "node2")
    tail = StoreTail(store, sel, (base - 1, 0))
    got = tail.read()
    assert [e.message for e, _ in got] == [f"msg {i}" for i in range(40)]
    assert all(e.host == "node2" for e, _ in got)
    for cut in range(len(got)):  # a reconnect after any entry resumes at the next one
        again = StoreTail(store, sel, got[cut][1]).read()
        assert [e.message for e, _ in again] == [f"msg {i}" for i in range(cut + 1, 40)]
    assert tail.read() == []  # nothing new
    any_host = StoreTail(store, Selection("web"), (base - 1, 0)).read()
    assert {e.host for e, _ in any_host} == {"node2", "node3"}


def test_entries_newer_than_the_watermark_wait_for_the_next_poll(server: Influxd) -> None:
    now = time.time_ns()
    write_logs(server.url, [(now - SETTLE_NS - 10**9, "node2", "late", "stdout", "old"),
                            (now, "node2", "late", "stdout", "fresh")])
    store = InfluxLogs(server.url, "logs", timeout=10)
    tail = StoreTail(store, Selection("late", "node2"), (now - 60 * 10**9, 0))
    assert [e.message for e, _ in tail.read(now)] == ["old"]
    assert tail.position == (now - SETTLE_NS + 1, 0)
    assert [e.message for e, _ in tail.read(now + SETTLE_NS)] == ["fresh"]


def probe(secs: float, code: int) -> dict:
    ns = int(secs * 1e9)
    return {"Start": rfc3339nano(ns - 10**6), "End": rfc3339nano(ns), "ExitCode": code,
            "Output": ""}


def doc(log: list[dict], streak: int, retries: int = 2) -> dict:
    return {"Config": {"Healthcheck": {"Test": ["CMD", "true"], "Retries": retries}},
            "State": {"Health": {"Status": "", "FailingStreak": streak, "Log": log}}}


def test_health_events_are_the_status_changes_in_the_log() -> None:
    t = 1_700_000_000.0
    flip = doc([probe(t, 0), probe(t + 1, 0), probe(t + 2, 1), probe(t + 3, 1),
                probe(t + 4, 0)], 0)
    assert [(e["t"], e["action"]) for e in stateevents.health_events(flip)] == [
        (t + 3, "health_status: unhealthy"), (t + 4, "health_status: healthy")]
    one_failure = doc([probe(t, 0), probe(t + 1, 1), probe(t + 2, 0)], 0)
    assert stateevents.health_events(one_failure) == []  # under Retries: no change
    # unhealthy since before the window: no event that slides with the window
    long_bad = doc([probe(t + i, 1) for i in range(5)], 9)
    assert stateevents.health_events(long_bad) == []
    assert stateevents.health_events({"State": {}}) == []
    assert stateevents.health_events({"State": {"Health": "junk"}}) == []


def test_a_feed_sends_each_event_once() -> None:
    feed = stateevents.Feed()
    a = {"t": 1.0, "action": "start", "exit_code": -1}
    b = {"t": 2.0, "action": "die", "exit_code": 1}
    assert feed.new([b, a]) == [a, b]
    assert feed.new([a, b]) == []
    c = {"t": 3.0, "action": "health_status: unhealthy", "exit_code": 1}
    assert feed.new([a, c]) == [c]


def test_a_burst_bigger_than_a_query_is_read_whole(server: Influxd,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The store answers the newest N of a query: a burst over N is read in narrower
    windows, oldest first, so nothing in its middle is skipped."""
    import boxwatch.web.storetail as storetail

    monkeypatch.setattr(storetail, "BATCH", 7)
    base = time.time_ns() - 120 * 10**9
    write_logs(server.url, [(base + i * 10**7, "node2", "burst", "stdout", f"b {i}")
                            for i in range(50)])
    tail = StoreTail(InfluxLogs(server.url, "logs", timeout=10), Selection("burst", "node2"),
                     (base, 0))
    got: list[str] = []
    for _ in range(20):
        got += [e.message for e, _ in tail.read()]
    assert got == [f"b {i}" for i in range(50)]
