"""`box logs` reading: history across rotated (gzipped) files, --tail, --since/--until,
following across rotations, and the bytes docker logs prints."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time

import pytest

import runtime.logging.reader as reader
from formats.jsonfile.parser import LogEntry, ParseError
from formats.jsonfile.writer import JsonFileWriter, encode_line
from formats.units import parse_rfc3339
from runtime.logging.reader import follow, format_entry, iter_entries, read_logs, rotated_files

T0 = parse_rfc3339("2024-05-01T10:11:12Z")
SEC = 1_000_000_000


def write(path: str, n: int, start: int = 0, **opts) -> None:
    """Lines "line <i>" at T0 + i seconds."""
    with JsonFileWriter(path, **opts) as w:
        for i in range(start, start + n):
            w.write_line("stdout" if i % 3 else "stderr", b"line %d\n" % i, T0 + i * SEC)


def numbers(entries) -> list[int]:
    return [int(e.log.split()[1]) for e in entries]


@pytest.fixture
def log(tmp_path) -> str:
    return str(tmp_path / "abc-json.log")


def test_history_is_read_oldest_first_through_gzip(log):
    write(log, 300, max_size=1000, max_file=4, compress=True)
    assert [os.path.basename(p) for p in rotated_files(log)] == [
        "abc-json.log.3.gz", "abc-json.log.2.gz", "abc-json.log.1.gz"]
    got = numbers(iter_entries(log))
    assert got == list(range(got[0], 300)) and got[0] > 0


def test_plain_file_wins_over_its_half_written_gzip(log):
    write(log + ".2", 5)
    write(log + ".1", 5, start=5)
    with open(log + ".1.gz", "wb") as f:  # compression of .1 still running
        f.write(gzip.compress(b"")[:5])
    write(log, 5, start=10)
    assert numbers(iter_entries(log)) == list(range(15))


def test_tail_counts_from_the_end_across_files(log):
    write(log, 200, max_size=2000, max_file=5, compress=True)
    everything = numbers(iter_entries(log))
    for n in (1, 10, 25, 60, len(everything)):
        assert numbers(iter_entries(log, tail=n)) == everything[-n:]
    assert numbers(iter_entries(log, tail=10_000)) == everything
    assert list(iter_entries(log, tail=0)) == []


def test_tail_reads_only_what_it_shows(log, monkeypatch):
    write(log, 5000)
    calls = []
    real = reader.parse_line
    monkeypatch.setattr(reader, "parse_line", lambda raw: calls.append(raw) or real(raw))
    assert numbers(iter_entries(log, tail=10)) == list(range(4990, 5000))
    assert len(calls) == 10


def test_tail_over_lines_longer_than_a_read_block(log):
    big = [b"%d " % i + b"x" * (100_000 + i) + b"\n" for i in range(5)]
    with JsonFileWriter(log) as w:
        for i, data in enumerate(big):
            w.write_line("stdout", data, T0 + i)
    # each json line is bigger than the 64 KiB blocks the tail reads backwards
    for n in (1, 2, 3, 5, 6):
        assert [e.log for e in iter_entries(log, tail=n)] == big[-n:]


def test_since_and_until_like_mobys_forwarder(log):
    times = [0, 1, 2, 5, 3, 6, 7, 8]  # not monotonic: 3 after 5
    with JsonFileWriter(log) as w:
        for i, t in enumerate(times):
            w.write_line("stdout", b"line %d\n" % i, T0 + t * SEC)
    # since: drop until the first entry at/after it, then keep everything (3 stays)
    assert numbers(iter_entries(log, since_ns=T0 + 4 * SEC)) == [3, 4, 5, 6, 7]
    # until: stop at the first entry after it
    assert numbers(iter_entries(log, until_ns=T0 + 2 * SEC)) == [0, 1, 2]
    assert numbers(iter_entries(log, since_ns=T0 + 1 * SEC, until_ns=T0 + 6 * SEC)) == [
        1,
        2,
        3,
        4,
        5,
    ]
    # tail first, then the window (moby's order)
    assert numbers(iter_entries(log, since_ns=T0 + 7 * SEC, tail=4)) == [6, 7]


def test_gzip_whose_last_time_is_before_since_is_skipped_unread(log):
    # header says everything in it is older than since; its lines claim otherwise
    body = b"".join(encode_line("stdout", b"line %d\n" % i, T0 + 100 * SEC) for i in range(3))
    extra = json.dumps({"lastTime": "2024-05-01T10:11:13Z"}).encode()
    with open(log + ".1.gz", "wb") as f:
        f.write(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + len(extra).to_bytes(2, "little")
                + extra + gzip.compress(body)[10:])
    write(log, 2, start=50)
    assert numbers(iter_entries(log)) == [0, 1, 2, 50, 51]
    assert numbers(iter_entries(log, since_ns=T0 + 20 * SEC)) == [50, 51]


def test_missing_log_is_empty_and_bad_lines_are_reported(log):
    assert list(iter_entries(log)) == []
    write(log, 2)
    with open(log, "ab") as f:
        f.write(b"\x00\x00\x00\n")
    write(log, 1, start=2)
    with open(log, "ab") as f:
        f.write(b'{"log":"in progr')  # a write still under way is not shown
    errors: list[ParseError] = []
    assert numbers(read_logs(log, on_error=errors.append)) == [0, 1, 2]
    assert [e.reason.split()[0] for e in errors] == ["NUL"]


# --- following ------------------------------------------------------------------------------

def run_writer(log: str, n: int, done: threading.Event, **opts) -> threading.Thread:
    def body() -> None:
        with JsonFileWriter(log, **opts) as w:
            for i in range(n):
                w.write_line("stdout", b"line %d\n" % i, T0 + i)
                if i % 20 == 0:  # ~40 lines fill a 3000-byte file: a poll sees each file
                    time.sleep(0.06)
        done.set()

    t = threading.Thread(target=body)
    t.start()
    return t


def deadline_stop(done: threading.Event, seconds: float = 30.0):
    end = time.monotonic() + seconds
    return lambda: done.is_set() or time.monotonic() > end


@pytest.mark.parametrize("opts", [
    {"max_size": 3000, "max_file": 3, "compress": True},
    {"max_size": 3000, "max_file": 1},  # unlinked and recreated
    {},
])
def test_follow_survives_rotation(log, opts):
    done = threading.Event()
    writer = run_writer(log, 600, done, **opts)
    got = numbers(follow(log, None, start_at_end=False, stop=deadline_stop(done)))
    writer.join()
    assert done.is_set()
    assert got == list(range(got[0], 600))  # in order, none lost or doubled after the start
    if not opts:
        assert got[0] == 0


def test_follow_from_the_end_shows_only_new_lines(log):
    write(log, 10)
    done = threading.Event()
    seen: list[LogEntry] = []

    def consume() -> None:
        seen.extend(follow(log, None, start_at_end=True, stop=deadline_stop(done)))

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    write(log, 5, start=10)
    done.set()
    t.join()
    assert numbers(seen) == [10, 11, 12, 13, 14]


def test_follow_waits_for_the_file_and_applies_since(log):
    done = threading.Event()
    seen: list[LogEntry] = []
    t = threading.Thread(target=lambda: seen.extend(
        follow(log, T0 + 3 * SEC, start_at_end=False, stop=deadline_stop(done))))
    t.start()
    time.sleep(0.15)
    write(log, 6)
    time.sleep(0.15)
    done.set()
    t.join()
    assert numbers(seen) == [3, 4, 5]


def test_tail_then_follow_is_one_snapshot(log):
    write(log, 20)
    done = threading.Event()
    seen: list[LogEntry] = []
    t = threading.Thread(target=lambda: seen.extend(
        read_logs(log, tail=3, follow=True, stop=deadline_stop(done))))
    t.start()
    time.sleep(0.15)
    write(log, 2, start=20)
    done.set()
    t.join()
    assert numbers(seen) == [17, 18, 19, 20, 21]


def test_follow_stops_after_until(log):
    write(log, 10)
    stop_calls = []
    got = numbers(read_logs(log, until_ns=T0 + 4 * SEC, follow=True,
                            stop=lambda: stop_calls.append(1) is not None))
    assert got == [0, 1, 2, 3, 4]


# --- printing ---------------------------------------------------------------------------------

def test_format_entry_is_docker_logs_output():
    e = LogEntry(b"hello\n", "stdout", T0 + 120_000_000, False, None)
    assert format_entry(e, timestamps=False) == b"hello\n"
    assert format_entry(e, timestamps=True) == b"2024-05-01T10:11:12.120000000Z hello\n"
    parts = [LogEntry(b"ab", "stdout", T0, True, None), LogEntry(b"c\n", "stdout", T0, False, None)]
    assert b"".join(format_entry(p, False) for p in parts) == b"abc\n"
    assert b"".join(format_entry(p, True) for p in parts) == (
        b"2024-05-01T10:11:12.000000000Z ab2024-05-01T10:11:12.000000000Z c\n")
    tagged = LogEntry(b"x\n", "stdout", T0, False, {"tag": "a b", "env": "K=v&"})
    assert format_entry(tagged, False, details=True) == b"env=K%3Dv%26,tag=a+b x\n"
    assert format_entry(e, False, details=True) == b" hello\n"
