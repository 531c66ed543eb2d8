"""The events journal (formats.events): docker's message shape, one line per event under
concurrent writers in several processes, rotation to one old file, replay and follow
across it, a line parser that never raises, and docker's --since/--until forms."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formats import events
from runtime.timeutil import docker_timestamp, go_duration_ns


def test_container_message_has_dockers_fields_and_order(tmp_path: Path) -> None:
    msg = events.append(str(tmp_path), "container", "die", "c" * 64,
                        {"name": "web", "image": "busybox", "exitCode": "3"})
    line = Path(events.journal_path(str(tmp_path))).read_bytes()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    doc = json.loads(line)
    assert list(doc) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                         "timeNano"]
    assert doc == msg
    assert doc["status"] == "die" and doc["id"] == "c" * 64 and doc["from"] == "busybox"
    assert doc["Actor"] == {"ID": "c" * 64, "Attributes": {"name": "web", "image": "busybox",
                                                           "exitCode": "3"}}
    assert doc["scope"] == "local" and doc["time"] == doc["timeNano"] // 10**9


def test_network_message_has_no_deprecated_fields() -> None:
    msg = events.message("network", "create", "n1", {"name": "net", "type": "bridge"})
    assert "status" not in msg and "id" not in msg and "from" not in msg


def _writer(root: str, who: int, count: int, max_bytes: int) -> None:
    for i in range(count):
        events.append(root, "container", "start", f"{who}-{i}", {"pad": "x" * (who * 7)},
                      max_bytes=max_bytes)


def _spawn(root: str, writers: int, count: int, max_bytes: int) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(root, w, count, max_bytes))
             for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def test_concurrent_writers_in_processes_never_interleave(tmp_path: Path) -> None:
    root = str(tmp_path)
    _spawn(root, writers=6, count=300, max_bytes=events.MAX_BYTES)
    raw = Path(events.journal_path(root)).read_bytes().split(b"\n")
    assert raw[-1] == b""
    msgs = [events.parse_line(line) for line in raw[:-1]]
    assert all(m is not None for m in msgs), "a torn or interleaved line"
    assert len(msgs) == 6 * 300
    for w in range(6):  # each writer's events in its own order, times never go back
        ids = [m["Actor"]["ID"] for m in msgs if m["Actor"]["ID"].startswith(f"{w}-")]
        assert ids == [f"{w}-{i}" for i in range(300)]
    times = [m["timeNano"] for m in msgs]
    assert times == sorted(times)


def test_concurrent_writers_with_rotation_keep_one_old_file_of_whole_lines(
        tmp_path: Path) -> None:
    root = str(tmp_path)
    _spawn(root, writers=4, count=400, max_bytes=20_000)
    live = Path(events.journal_path(root))
    old = Path(str(live) + ".1")
    assert old.exists() and not Path(str(live) + ".2").exists()
    for path in (old, live):
        data = path.read_bytes()
        assert len(data) <= 20_000
        assert all(events.parse_line(x) is not None for x in data.split(b"\n")[:-1])
    replayed = list(events.replay(root))
    times = [m["timeNano"] for m in replayed]
    assert times == sorted(times) and len(replayed) > 0
    # only whole old files are dropped: what survives is the newest part of the stream,
    # so each writer's surviving events are the end of its own sequence, without gaps
    for w in range(4):
        idx = [int(m["Actor"]["ID"].split("-")[1]) for m in replayed
               if m["Actor"]["ID"].startswith(f"{w}-")]
        assert idx == list(range(400 - len(idx), 400)), (w, idx[:5])
    assert replayed[-1]["Actor"]["ID"].endswith("-399")  # the last one written is there


def test_replay_window_and_rotation_order(tmp_path: Path) -> None:
    root = str(tmp_path)
    stamps = []
    for i in range(30):
        stamps.append(events.append(root, "image", "tag", f"i{i}", max_bytes=2_000)["timeNano"])
    got = [m["Actor"]["ID"] for m in events.replay(root, stamps[20], stamps[25])]
    assert got == [f"i{i}" for i in range(20, 26)]


def test_follower_sees_new_lines_across_a_rotation(tmp_path: Path) -> None:
    root = str(tmp_path)
    events.append(root, "volume", "create", "before")
    follower = events.Follower(root)
    assert [m["Actor"]["ID"] for m in follower.poll()] == ["before"]
    seen = []
    for i in range(40):  # several rotations' worth, polled as it goes
        events.append(root, "volume", "create", f"v{i}", max_bytes=1_500)
        if i % 3 == 0:
            seen += [m["Actor"]["ID"] for m in follower.poll()]
    seen += [m["Actor"]["ID"] for m in follower.poll()]
    follower.close()
    assert seen == [f"v{i}" for i in range(40)]


def test_follow_without_since_starts_now_and_stops(tmp_path: Path) -> None:
    root = str(tmp_path)
    events.append(root, "container", "start", "old")
    calls = []

    def stop() -> bool:  # called before each poll: the first call writes a new event
        calls.append(1)
        if len(calls) == 1:
            events.append(root, "container", "start", "new")
        return len(calls) > 5

    got = [m["Actor"]["ID"] for m in events.follow(root, None, stop, 0.001)]
    assert got == ["new"]
    calls.clear()
    got = [m["Actor"]["ID"] for m in events.follow(root, 0, lambda: len(calls) > 0, 0.001)
           if not calls.append(1)]
    assert got == ["old", "new"]


def test_torn_tail_is_left_for_the_next_read(tmp_path: Path) -> None:
    root = str(tmp_path)
    events.append(root, "container", "start", "a")
    path = events.journal_path(root)
    line = events.encode(events.message("container", "stop", "b"))
    with open(path, "ab") as f:
        f.write(line[:10])
    follower = events.Follower(root)
    assert [m["Actor"]["ID"] for m in follower.poll()] == ["a"]
    with open(path, "ab") as f:
        f.write(line[10:])
    assert [m["Actor"]["ID"] for m in follower.poll()] == ["b"]
    follower.close()


def test_unwritable_journal_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "events").write_text("not a directory")
    events.record(str(tmp_path), "container", "start", "x")  # no exception
    with pytest.raises(OSError):
        events.append(str(tmp_path), "container", "start", "x")


# --- the parser and the time forms, by property ----------------------------------------

_text = st.text(max_size=20)
_msgs = st.builds(events.message, st.sampled_from(events.TYPES), _text, _text,
                  st.dictionaries(_text, _text, max_size=4),
                  st.integers(min_value=0, max_value=2**62))


@settings(max_examples=200, deadline=None)
@given(_msgs)
def test_parse_line_reads_back_what_encode_wrote(msg: dict) -> None:
    line = events.encode(msg)
    assert line.count(b"\n") == 1
    assert events.parse_line(line) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_line_never_raises(data: bytes) -> None:
    msg = events.parse_line(data)
    assert msg is None or isinstance(msg["Actor"]["Attributes"], dict)


NOW = 1_796_457_600_000_000_000  # 2026-12-05T08:00:00Z


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(0, 999_999_999))
def test_unix_timestamps(secs: int, nanos: int) -> None:
    assert docker_timestamp(str(secs), NOW) == secs * 10**9
    assert docker_timestamp(f"{secs}.{nanos:09d}", NOW) == secs * 10**9 + nanos


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h", "ms"]))
def test_durations_are_before_now(n: int, unit: str) -> None:
    scale = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "ms": 10**6}[unit]
    expect = NOW - n * scale if f"{n}{unit}" != "0" else 0
    assert docker_timestamp(f"{n}{unit}", NOW) == expect


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_rfc3339_with_zone_round_trips(ns: int) -> None:
    from formats.units import rfc3339nano

    assert docker_timestamp(rfc3339nano(ns), NOW) == ns
    secs = ns // 10**9
    plus2 = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(secs + 7200))
    assert docker_timestamp(plus2, NOW) == secs * 10**9


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_anything_else_is_one_value_error(text: str) -> None:
    try:
        docker_timestamp(text, NOW)
    except ValueError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("text,want", [("1h30m", 5400 * 10**9), ("-5m", -300 * 10**9),
                                       ("1.5s", 1_500_000_000), ("0", 0), ("+2m", 120 * 10**9)])
def test_go_durations(text: str, want: int) -> None:
    assert go_duration_ns(text) == want


def test_dockers_messages_for_bad_values() -> None:
    with pytest.raises(ValueError, match='failed to parse value as time or duration: "soon"'):
        docker_timestamp("soon", NOW)
    with pytest.raises(ValueError, match="2026-13-01"):
        docker_timestamp("2026-13-01", NOW)
    local = docker_timestamp("2026-12-05", NOW)  # a date alone is local midnight
    assert local == (1_796_428_800 - time.localtime(NOW // 10**9).tm_gmtoff) * 10**9
    os.environ.get("TZ")  # (the machine's zone decides local, as docker's does)
