"""The live tail's positions (``boxwatch.web.tail``) and the SSE cursor built from them
(``boxwatch.web.logs``): a resume is exact within a file, across a rotation, and from a
window start; no browser, real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from boxwatch.web.logs import decode_cursor, encode_cursor
from boxwatch.web.tail import Tail, find_local
from formats.jsonfile.writer import encode_line


def write(path: Path, first: int, last: int, stream: str = "stdout") -> None:
    with open(path, "ab") as f:
        for i in range(first, last + 1):
            f.write(encode_line(stream, f"line {i}\n".encode(), 1_700_000_000 * 10**9 + i))


def numbers(lines: list) -> list[int]:
    return [int(ln.message.split()[1]) for ln in lines]


def test_resume_from_any_position_is_exact(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    write(log, 1, 10)
    tail = Tail(str(log), back_bytes=1 << 20)
    lines = tail.read()
    assert numbers(lines) == list(range(1, 11))
    for cut in range(10):  # resume after entry cut+1
        again = Tail(str(log), lines[cut].position)
        assert numbers(again.read()) == list(range(cut + 2, 11))
        again.close()
    with open(log, "ab") as f:
        f.write(b'{"log":"half')  # a line being written is not handed out yet
    assert tail.read() == []
    tail.close()


def test_a_rotation_between_reads_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    write(log, 1, 5)
    tail = Tail(str(log), back_bytes=1 << 20)
    assert numbers(tail.read()) == [1, 2, 3, 4, 5]
    cursor = tail.position
    write(log, 6, 8)
    os.rename(log, str(log) + ".1")  # as the monitor rotates
    write(log, 9, 12)
    assert numbers(tail.read()) == list(range(6, 13))
    tail.close()
    resumed = Tail(str(log), cursor)  # a page reconnecting with the old cursor
    assert numbers(resumed.read()) == list(range(6, 13))
    resumed.close()


def test_a_window_starts_at_a_line_and_a_lost_file_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    write(log, 1, 100)
    size = log.stat().st_size
    tail = Tail(str(log), back_bytes=size // 2)
    got = numbers(tail.read())
    assert got == list(range(got[0], 101)) and 30 < got[0] < 70
    tail.close()
    gone = Tail(str(log), (1, 12345))  # an inode that is no longer there: from the end
    assert gone.read() == []
    gone.close()


def test_cursor_round_trip_and_junk() -> None:
    positions = {"a" * 64: (12, 345), "b" * 64: (7, 0)}
    text = encode_cursor(positions)
    assert decode_cursor(text) == {"a" * 16: (12, 345), "b" * 16: (7, 0)}
    assert decode_cursor("junk,x:y:z,:::") == {}


def test_find_local_by_name_id_and_prefix(tmp_path: Path) -> None:
    cid = "ab" * 32
    d = tmp_path / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps(
        {"ID": cid, "Name": "/web", "LogPath": f"{d}/{cid}-json.log"}))
    for key in ("web", cid, cid[:12]):
        found = find_local([str(tmp_path)], key)
        assert found is not None and found.id == cid and found.root == str(tmp_path)
    assert find_local([str(tmp_path)], "ab") is None  # too short a prefix
    assert find_local([str(tmp_path / "nowhere")], "web") is None


def test_a_container_is_name_or_name_at_host() -> None:
    from multidict import MultiDict

    from boxwatch.logs.query import QueryError
    from boxwatch.web.logs import Filters

    assert Filters.parse(MultiDict([("c", "web"), ("c", "web@node2")])).names == (
        "web", "web@node2")
    for bad in ("@node2", "web@", "@"):
        try:
            Filters.parse(MultiDict([("c", bad)]))
        except QueryError as exc:
            assert repr(bad) in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
