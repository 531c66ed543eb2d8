"""Lines -> records: the json-file fast path against the one parser, CRI, partial and
multiline joining, the size cap, bad input, and the offsets checkpoints are made of."""

from __future__ import annotations

import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from formats.jsonfile.parser import parse_line
from formats.jsonfile.writer import encode_line
from formats.logentry import ParseError
from shipper.parse.cri import detect_format, parse_cri
from shipper.parse.decode import FileDecoder
from shipper.sinks.base import PARSE_ERROR, PARTIAL, TRUNCATED, Origin, Record

T0 = 1_714_558_272_000_000_000  # 2024-05-01T10:11:12Z
WEB = Origin("c" * 64, "web", "busybox")


def feed(dec: FileDecoder, data: bytes, off: int = 0) -> list[Record]:
    """Feed whole lines of ``data`` (which ends with a newline)."""
    out: list[Record] = []
    dec.feed(data.split(b"\n")[:-1], off, out)
    return out


def js(stream: str, text: str, ns: int) -> bytes:
    return encode_line(stream, text.encode(), ns)


def test_whole_lines_become_records_with_end_offsets():
    data = js("stdout", "a\n", T0 + 1) + js("stderr", "bb\n", T0 + 2) + js("stdout", "c\n", T0 + 3)
    recs = feed(FileDecoder("/x/a-json.log", WEB), data)
    assert [(r.message, r.stream, r.time_ns, r.flags) for r in recs] == [
        ("a", "stdout", T0 + 1, 0), ("bb", "stderr", T0 + 2, 0), ("c", "stdout", T0 + 3, 0)]
    ends = [i + 1 for i, b in enumerate(data) if b == 10]
    assert [r.offset for r in recs] == ends
    assert recs[0].container_name == "web" and recs[0].origin is WEB


lines = st.tuples(
    st.sampled_from(["stdout", "stderr", "weird"]),
    st.text(min_size=0, max_size=40),
    st.integers(min_value=0, max_value=3 * 10**9),  # spans a few seconds
    st.sampled_from(["none", "cut", "byte", "zone", "attrs"]),
    st.integers(min_value=0, max_value=200),
)


def _mutate(raw: bytes, how: str, at: int) -> bytes:
    if how == "cut":
        return raw[:at % max(len(raw), 1)]
    if how == "byte":
        i = at % len(raw)
        return raw[:i] + bytes([at % 256]).replace(b"\n", b" ") + raw[i + 1:]
    if how == "zone":  # the same instant written with an offset: only parse_line takes it
        return raw.replace(b'Z"}', b'+00:00"}')
    if how == "attrs":
        return raw[:-1] + b',"attrs":{"a":"b"}}'
    return raw


@settings(max_examples=400, deadline=None)
@given(st.lists(lines, min_size=1, max_size=30))
def test_fast_path_agrees_with_parse_line(entries):
    """Whole lines and damaged ones: the decoder ships exactly what parse_line says, and
    what it refuses as a raw parse_error record."""
    raws = [_mutate(js(stream, text + "\n", T0 + dt)[:-1], how, at)
            for stream, text, dt, how, at in entries]
    raws = [r for r in raws if b"\n" not in r]
    out: list[Record] = []
    dec = FileDecoder("/x/a-json.log", WEB)
    dec.feed(raws, 0, out)
    dec.finish(b"", out)
    want = []
    off = 0
    pending = False
    for raw in raws:
        off += len(raw) + 1
        try:
            e = parse_line(raw)
        except ParseError:
            e = None
        if e is None or e.stream not in ("stdout", "stderr"):
            want.append((off, PARSE_ERROR, raw))
        elif e.partial:
            pending = True  # a damaged line that lost its newline: joined with what follows
    got = [(r.offset, r.flags, r.message if isinstance(r.message, bytes) else r.message.encode())
           for r in out if r.flags & PARSE_ERROR]
    assert got == want
    if not pending:
        whole = [r for r in out if not r.flags]
        expect = [parse_line(r) for r in raws if _ok(r)]
        assert [(r.time_ns, r.message, r.stream) for r in whole] == [
            (e.time_ns, e.log.decode()[:-1], e.stream) for e in expect]


def _ok(raw: bytes) -> bool:
    try:
        return parse_line(raw).stream in ("stdout", "stderr")
    except ParseError:
        return False


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]), st.text(max_size=30),
                          st.integers(min_value=0, max_value=5 * 10**9)), min_size=1, max_size=20))
def test_whole_lines_match_the_parser_exactly(entries):
    raws = [js(s, t + "\n", T0 + dt)[:-1] for s, t, dt in entries]
    out: list[Record] = []
    FileDecoder("/x/a-json.log", WEB).feed(raws, 0, out)
    want = [parse_line(r) for r in raws]
    assert [(r.time_ns, r.message, r.stream) for r in out] == [
        (e.time_ns, e.log.decode()[:-1], e.stream) for e in want]


def test_partials_are_joined_per_stream_and_interleave():
    data = (js("stderr", "E1-", T0 + 5) + js("stdout", "out1\n", T0 + 6)
            + js("stderr", "E2-", T0 + 7) + js("stdout", "out2\n", T0 + 8)
            + js("stderr", "E3\n", T0 + 9))
    dec = FileDecoder("/x/a-json.log", WEB)
    recs = feed(dec, data)
    assert [(r.stream, r.message) for r in recs] == [
        ("stdout", "out1"), ("stdout", "out2"), ("stderr", "E1-E2-E3")]
    assert recs[2].time_ns == T0 + 5  # moby stamps every chunk with the first's time
    assert recs[2].offset == len(data)


def test_watermarks_hold_back_resume_while_a_partial_is_pending():
    first = js("stderr", "chunk-", T0)
    data = first + js("stdout", "a\n", T0 + 1) + js("stdout", "b\n", T0 + 2)
    dec = FileDecoder("/x/a-json.log", WEB)
    recs = feed(dec, data)
    assert [r.message for r in recs] == ["a", "b"]
    resume, acked = dec.watermarks()
    assert resume == 0  # the pending chunk's line must be read again after a crash
    assert acked == len(first) - 1  # ... but a, b (ending later) are skipped on replay
    # replay after a "crash": from resume, skipping entries that end at or before acked
    # plus the ones delivered (a, b end after acked: a restart may repeat them, never lose)
    dec2 = FileDecoder("/x/a-json.log", WEB)
    dec2.skip = recs[-1].offset
    more = js("stderr", "end\n", T0 + 3)
    again = feed(dec2, data + more)
    assert [r.message for r in again] == ["chunk-end"]


def test_max_line_bytes_cuts_and_flags():
    chunks = b"".join(js("stdout", "x" * 100, T0) for _ in range(5)) + js("stdout", "y\n", T0)
    recs = feed(FileDecoder("/x/a-json.log", WEB, max_line_bytes=250), chunks)
    assert len(recs) == 1 and recs[0].message == "x" * 250 and recs[0].flags == TRUNCATED
    whole = js("stdout", "z" * 300 + "\n", T0)
    recs = feed(FileDecoder("/x/a-json.log", WEB, max_line_bytes=250), whole)
    assert recs[0].message == "z" * 250 and recs[0].truncated


def test_unfinished_partial_is_flushed_after_the_timeout_flagged_partial():
    dec = FileDecoder("/x/a-json.log", WEB, flush_timeout=5.0)
    assert feed(dec, js("stdout", "never ends", T0)) == []
    out: list[Record] = []
    dec.flush_due(out, now=dec.now + 1)
    assert out == []
    dec.flush_due(out, now=dec.now + 6)
    assert [(r.message, r.flags) for r in out] == [("never ends", PARTIAL)]


def test_bad_input_is_shipped_raw_flagged_and_counted():
    good = js("stdout", "ok\n", T0)
    bad = [b"not json at all", b"\x00\x00\x00\x00" + good[:-1],
           b'{"log":"a\xff\\n","stream":"stdout","time":"2024-05-01T10:11:12Z"}',
           b'{"log":"a\\n","stream":"stdin","time":"2024-05-01T10:11:12Z"}',
           b'{"log":"a\\n","stream":"stdout","time":"yesterday"}', b"[1,2]"]
    dec = FileDecoder("/x/a-json.log", WEB)
    recs = feed(dec, good + b"\n".join(bad) + b"\n" + good)
    assert [r.message for r in recs if not r.flags] == ["ok", "ok"]
    errs = [r for r in recs if r.flags & PARSE_ERROR]
    assert dec.parse_errors == len(bad) == len(errs)
    assert [r.message if isinstance(r.message, bytes) else r.message.encode() for r in errs] == bad
    assert isinstance(errs[2].message, bytes)  # invalid UTF-8 stays bytes; .text replaces
    assert "\ufffd" in errs[2].text and errs[0].stream == ""


def test_cri_lines_full_partial_and_bad():
    assert parse_cri(b"2024-05-01T10:11:12.5Z stdout F hello world") == (
        T0 + 500_000_000, "stdout", False, b"hello world")
    assert parse_cri(b"2024-05-01T12:11:12+02:00 stderr P part")[1:] == ("stderr", True, b"part")
    assert parse_cri(b"2024-05-01T10:11:12Z stdout F")[3] == b""
    for bad in (b"garbage", b"2024-05-01T10:11:12Z stdin F x", b"2024-05-01T10:11:12Z stdout X x",
                b"yesterday stdout F x"):
        try:
            parse_cri(bad)
        except ParseError as err:
            assert err.raw == bad
        else:
            raise AssertionError(f"{bad!r} parsed")
    data = (b"2024-05-01T10:11:12.1Z stdout P hel\n2024-05-01T10:11:12.2Z stderr F oops\n"
            b"2024-05-01T10:11:12.3Z stdout F lo\n\xff\xfe broken\n")
    dec = FileDecoder("/var/log/pods/ns_pod_uid/app/0.log", WEB)
    recs = feed(dec, data)
    assert dec.fmt == "cri"
    assert [(r.stream, r.message, r.flags) for r in recs[:2]] == [
        ("stderr", "oops", 0), ("stdout", "hello", 0)]
    assert recs[1].time_ns == T0 + 100_000_000 and recs[2].flags == PARSE_ERROR
    assert detect_format("/x/c-json.log", b"2024") == "json-file"
    assert detect_format("/x/0.log", b'{"log"') == "json-file"


def test_multiline_groups_by_start_regex_per_stream():
    dec = FileDecoder("/x/a-json.log", WEB, multiline=re.compile(r"^\S"), multiline_timeout=2.0)
    data = (js("stdout", "Traceback (most recent call last):\n", T0)
            + js("stderr", "other stream\n", T0 + 1)
            + js("stdout", "  File x, line 1\n", T0 + 2)
            + js("stdout", "ValueError: boom\n", T0 + 3)
            + js("stdout", "  more\n", T0 + 4)
            + js("stdout", "next event\n", T0 + 5))
    recs = feed(dec, data)
    assert [r.message for r in recs] == ["Traceback (most recent call last):\n  File x, line 1",
                                         "ValueError: boom\n  more"]
    resume, acked = dec.watermarks()
    assert resume < len(data) and acked < len(data)  # two groups still open
    out: list[Record] = []
    dec.finish(b"", out)
    assert sorted(r.message for r in out) == ["next event", "other stream"]


def test_eof_of_a_rotated_file_ships_its_unterminated_rest():
    dec = FileDecoder("/x/a-json.log", WEB)
    out = feed(dec, js("stdout", "a\n", T0))
    dec.finish(b'{"log":"cut off', out)
    assert [(r.message, r.flags) for r in out] == [("a", 0), ('{"log":"cut off', PARSE_ERROR)]
    assert out[1].offset == dec.consumed


def test_file_sink_wire_format():
    from shipper.sinks.file import encode

    o = Origin("i" * 64, "web", "busybox", {"app": "x"}, host="node1")
    recs = [Record(T0, "hi \"there\"", "stdout", 10, 0, o),
            Record(T0 + 1, b"raw\xff", "", 20, PARSE_ERROR | TRUNCATED, o)]
    lines = encode(recs).splitlines()
    assert orjson.loads(lines[0]) == {"time_ns": T0, "container_id": "i" * 64,
                                      "container_name": "web", "image": "busybox",
                                      "host": "node1", "labels": {"app": "x"},
                                      "stream": "stdout", "offset": 10,
                                      "message": 'hi "there"'}
    second = orjson.loads(lines[1])
    assert second["message"] == "raw\ufffd" and second["parse_error"] is True
    assert second["truncated"] is True and "partial" not in second
