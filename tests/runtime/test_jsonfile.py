"""The json-file writer: dockerd's exact bytes, its 16 KiB splitting and its rotation."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formats.jsonfile.parser import parse_line
from formats.jsonfile.writer import (
    JsonFileWriter,
    LineSplitter,
    encode_line,
    stream_to_writer,
)
from formats.units import from_human_size, parse_rfc3339
from runtime.errors import InvalidArgument
from runtime.logging.options import parse_log_opts

T0 = parse_rfc3339("2024-05-01T10:11:12.123456789Z")
T_SEC = parse_rfc3339("2017-09-01T01:01:01Z")


# Go's utf8.DecodeRune rejects one byte at a time; moby writes one \ufffd per rejected byte.
def _one_byte_replace(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("test-go-rune-error", _one_byte_replace)


def go_text(data: bytes) -> bytes:
    return data.decode("utf-8", "test-go-rune-error").encode("utf-8")


# --- the bytes of a line --------------------------------------------------------------------

def test_plain_line_is_dockers():
    assert encode_line("stdout", b"hello\n", T0) == (
        b'{"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:11:12.123456789Z"}\n')


@pytest.mark.parametrize("data, escaped", [
    # moby jsonlogbytes_test.go cases
    (b'"A log line with \\"', b'\\"A log line with \\\\\\"'),
    (b"A log line with \r", b"A log line with \\r"),
    (b"A log line with & < >", b"A log line with \\u0026 \\u003c \\u003e"),
    ("A log line with utf8 : 🚀 ψ ω β".encode(), "A log line with utf8 : 🚀 ψ ω β".encode()),
    ("\u2028 \u2029".encode(), b"\\u2028 \\u2029"),
    (b"\xaf", b"\\ufffd"),
    (b"\x7f", b"\x7f"),
    # tab and the other control bytes have no short form in moby's writer
    (b"a\tb\x00\x01\x08\x0c\x1b\x1f\n", b"a\\u0009b\\u0000\\u0001\\u0008\\u000c\\u001b\\u001f\\n"),
    # a truncated 3-byte sequence is two rejected bytes; an encoded surrogate is three
    (b"\xe2\x82x", b"\\ufffd\\ufffdx"),
    (b"\xed\xa0\x80", b"\\ufffd\\ufffd\\ufffd"),
    (b"\xc0\x80", b"\\ufffd\\ufffd"),  # overlong
    ("\ufffd".encode(), "\ufffd".encode()),  # a real U+FFFD stays raw
    ("é€😀".encode(), "é€😀".encode()),
])
def test_escaping_matches_moby(data, escaped):
    line = encode_line("stdout", data, T_SEC)
    assert line == b'{"log":"' + escaped + b'","stream":"stdout","time":"2017-09-01T01:01:01Z"}\n'


def test_time_is_rfc3339nano_trimmed():
    assert b'"time":"2017-09-01T01:01:01.000000001Z"' in encode_line("s", b"x", T_SEC + 1)
    assert b'"time":"2017-09-01T01:01:01.1Z"' in encode_line("s", b"x", T_SEC + 100_000_000)
    assert b'"time":"2017-09-01T01:01:01Z"' in encode_line("s", b"x", T_SEC)


def test_empty_fields_are_omitted_like_moby():
    assert (
        encode_line("stdout", b"", T_SEC) == b'{"stream":"stdout","time":"2017-09-01T01:01:01Z"}\n'
    )
    assert encode_line("", b"", T_SEC) == b'{"time":"2017-09-01T01:01:01Z"}\n'


def test_attrs_sit_between_stream_and_time():
    line = encode_line("stdout", b"A log line with tag\n", T_SEC,
                       attrs={"tag": "a7317399f3f8/test", "b": "<\t>"})
    assert line == (b'{"log":"A log line with tag\\n","stream":"stdout",'
                    b'"attrs":{"b":"\\u003c\\t\\u003e","tag":"a7317399f3f8/test"},'
                    b'"time":"2017-09-01T01:01:01Z"}\n')
    assert parse_line(line).attrs == {"tag": "a7317399f3f8/test", "b": "<\t>"}


@settings(max_examples=400)
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode),
       st.sampled_from(["stdout", "stderr"]),
       st.integers(min_value=0, max_value=253402300799_999_999_999))
def test_round_trip_through_the_parser(data, stream, ts):
    line = encode_line(stream, data + b"\n", ts)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    for raw in (b"<", b">", b"&", b"\t"):
        assert raw not in line[:-1]
    assert json.loads(line)["stream"] == stream
    entry = parse_line(line)
    assert entry.log == go_text(data) + b"\n"
    assert (entry.stream, entry.time_ns, entry.partial) == (stream, ts, False)
    if data and not data.endswith(b"\n"):
        assert parse_line(encode_line(stream, data, ts)).partial is True


# --- splitting like moby's Copier ----------------------------------------------------------------


def copier_model(stream: bytes, read_sizes: list[int], buf_size: int = 16384) -> list[bytes]:
    """moby's Copier as a model: a fixed buffer filled by short reads, lines cut at
    newlines, a full buffer without newline logged as a partial, the rest at EOF."""
    out, buf, pos, i = [], b"", 0, 0
    while True:
        want = min(read_sizes[i % len(read_sizes)], buf_size - len(buf))
        i += 1
        chunk = stream[pos:pos + want]
        pos += len(chunk)
        eof = pos >= len(stream) and not chunk
        buf += chunk
        while (q := buf.find(b"\n")) >= 0:
            out.append(buf[:q + 1])
            buf = buf[q + 1:]
        if eof or len(buf) == buf_size:
            if buf:
                out.append(buf)
                buf = b""
            if eof:
                return out


def test_a_40000_byte_line_is_two_partials_and_a_tail():
    got: list[bytes] = []
    s = LineSplitter(got.append)
    s.feed(b"x" * 40000 + b"\n")
    s.flush()
    assert [len(c) for c in got] == [16384, 16384, 7233]
    assert [c.endswith(b"\n") for c in got] == [False, False, True]


@pytest.mark.parametrize("length, chunks", [
    (16383, [16384]),  # the newline still fits in the buffer
    (16384, [16384, 1]),  # it does not: a partial, then a bare "\n"
    (32768, [16384, 16384, 1]),
])
def test_split_at_the_buffer_edge(length, chunks):
    got: list[bytes] = []
    s = LineSplitter(got.append)
    s.feed(b"y" * length + b"\n")
    assert [len(c) for c in got] == chunks
    assert got[-1].endswith(b"\n")


def test_unterminated_rest_is_emitted_at_eof_only():
    got: list[bytes] = []
    s = LineSplitter(got.append)
    s.feed(b"a\nbc")
    s.feed(b"d")
    assert got == [b"a\n"]
    s.flush()
    s.flush()
    assert got == [b"a\n", b"bcd"]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=30),
       st.lists(st.integers(1, 60), min_size=1, max_size=8),
       st.lists(st.integers(1, 90), min_size=1, max_size=8))
def test_splitter_equals_copier_for_any_reads(lines, model_reads, feed_sizes):
    stream = b"".join(b"z" * n + (b"\n" if nl else b"") for n, nl in lines)
    expected = copier_model(stream, model_reads, buf_size=16)
    got: list[bytes] = []
    s = LineSplitter(got.append, max_chunk=16)
    pos, i = 0, 0
    while pos < len(stream):
        n = feed_sizes[i % len(feed_sizes)]
        s.feed(stream[pos:pos + n])
        pos, i = pos + n, i + 1
    s.flush()
    assert got == expected


def test_partials_share_the_first_partials_time(tmp_path):
    path = str(tmp_path / "c-json.log")
    ticks = iter(range(1_000_000_000, 2_000_000_000, 1000))
    with JsonFileWriter(path) as w:
        s = stream_to_writer(w, "stdout", clock=lambda: next(ticks))
        s.feed(b"first\n" + b"p" * 40000 + b"\nlast\n")
        s.flush()
    entries = [parse_line(raw) for raw in open(path, "rb")]
    assert [len(e.log) for e in entries] == [6, 16384, 16384, 7233, 5]
    assert [e.partial for e in entries] == [False, True, True, False, False]
    assert [e.time_ns for e in entries] == [1_000_000_000] + [1_000_001_000] * 3 + [1_000_002_000]


# --- the file and its rotation --------------------------------------------------------------------

def test_moby_rotation_golden(tmp_path):
    """moby TestJSONFileLoggerWithOpts: max-file 3, max-size 1k, compress, 36 lines."""
    path = str(tmp_path / "container.log")
    max_size, max_file, compress = parse_log_opts({"max-file": "3", "max-size": "1k",
                                                   "compress": "true"})
    with JsonFileWriter(path, max_size, max_file, compress) as w:
        for i in range(36):
            w.write_line("src1", f"line{i}\n".encode(), T_SEC)

    def golden(lines: range) -> bytes:
        return b"".join(b'{"log":"line%d\\n","stream":"src1","time":"2017-09-01T01:01:01Z"}\n' % i
                        for i in lines)

    assert sorted(os.listdir(tmp_path)) == ["container.log", "container.log.1.gz",
                                            "container.log.2.gz"]
    assert gzip.open(path + ".2.gz").read() == golden(range(0, 16))
    assert gzip.open(path + ".1.gz").read() == golden(range(16, 32))
    assert open(path, "rb").read() == golden(range(32, 36))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(path + ".1.gz").st_mode) == 0o640


def test_gzip_header_carries_last_time(tmp_path):
    path = str(tmp_path / "c-json.log")
    with JsonFileWriter(path, max_size=10, max_file=2, compress=True) as w:
        w.write_line("stdout", b"one\n", T0)
        w.write_line("stdout", b"two\n", T0 + 5)
    raw = open(path + ".1.gz", "rb").read()
    assert raw[:4] == b"\x1f\x8b\x08\x04"  # FEXTRA, as Go's gzip.Writer with Header.Extra
    xlen = int.from_bytes(raw[10:12], "little")
    assert json.loads(raw[12:12 + xlen]) == {"lastTime": "2024-05-01T10:11:12.123456789Z"}
    assert parse_line(gzip.decompress(raw)).log == b"one\n"


def test_rotation_without_compress_drops_the_oldest(tmp_path):
    path = str(tmp_path / "c-json.log")
    max_size = 500
    lines = [(b"m%03d " % i) * (i % 7 + 1) + b"\n" for i in range(200)]
    lines[100] = b"B" * 2000 + b"\n"  # one oversized line
    with JsonFileWriter(path, max_size=max_size, max_file=4) as w:
        for i, data in enumerate(lines):
            w.write_line("stderr", data, T0 + i)
            assert w.size == os.path.getsize(path)
    assert sorted(os.listdir(tmp_path)) == ["c-json.log", "c-json.log.1", "c-json.log.2",
                                            "c-json.log.3"]
    seen = []
    for name in ("c-json.log.3", "c-json.log.2", "c-json.log.1", "c-json.log"):
        content = open(tmp_path / name, "rb").read()
        raws = content.splitlines(keepends=True)
        if name != "c-json.log":
            # rotated only once full; the write that filled it was the last one in it
            assert len(content) >= max_size
            assert len(content) - len(raws[-1]) < max_size
        seen += [parse_line(r) for r in raws]
    times = [e.time_ns - T0 for e in seen]
    assert times == list(range(times[0], 200)) and times[0] > 0  # oldest dropped, no gap
    assert [e.log for e in seen] == lines[times[0]:]


def test_max_file_1_starts_over(tmp_path):
    path = str(tmp_path / "c-json.log")
    with JsonFileWriter(path, max_size=100, max_file=1) as w:
        for i in range(10):
            w.write_line("stdout", b"line %d\n" % i, T0)
    assert os.listdir(tmp_path) == ["c-json.log"]
    # ~84-byte lines, 100-byte limit: a file takes two lines before it is full
    assert [parse_line(r).log for r in open(path, "rb")] == [b"line 8\n", b"line 9\n"]


def test_reopening_appends_and_knows_the_size(tmp_path):
    path = str(tmp_path / "c-json.log")
    with JsonFileWriter(path) as w:
        w.write_line("stdout", b"a\n", T0)
    with JsonFileWriter(path, max_size=10**6) as w:
        assert w.size == os.path.getsize(path)
        w.write_line("stdout", b"b\n", T0)
    assert [parse_line(r).log for r in open(path, "rb")] == [b"a\n", b"b\n"]


def test_writes_after_close_fail(tmp_path):
    w = JsonFileWriter(str(tmp_path / "c-json.log"))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write_line("stdout", b"x\n", T0)


# --- --log-opt -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [
    ("10m", 10_000_000), ("1k", 1000), ("1KiB", 1000), ("1.5k", 1500), ("100", 100),
    ("2 MB", 2_000_000), ("3g", 3_000_000_000), ("7b", 7),
])
def test_human_size_is_go_units_decimal(text, size):
    assert from_human_size(text) == size


@pytest.mark.parametrize("opts, expected", [
    ({}, (-1, 1, False)),
    ({"max-size": "10m", "max-file": "3"}, (10_000_000, 3, False)),
    ({"max-size": "1k", "max-file": "2", "compress": "true"}, (1000, 2, True)),
    ({"max-file": "5"}, (-1, 5, False)),
    ({"compress": "false", "tag": "{{.Name}}", "labels": "a", "env": "B"}, (-1, 1, False)),
])
def test_log_opts_accepted(opts, expected):
    assert parse_log_opts(opts) == expected


@pytest.mark.parametrize("opts, message", [
    ({"foo": "1"}, "unknown log opt 'foo' for json-file log driver"),
    ({"max-size": "abc"}, "invalid size: 'abc'"),
    ({"max-size": "10x"}, "invalid suffix: 'x'"),
    ({"max-size": "1.2.3k"}, 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ({"max-size": "0"}, "max-size must be a positive number (got '0')"),
    ({"max-file": "two"}, 'strconv.Atoi: parsing "two": invalid syntax'),
    ({"max-file": "0"}, "max-file cannot be less than 1 (got '0')"),
    ({"compress": "yes"}, 'strconv.ParseBool: parsing "yes": invalid syntax'),
    ({"compress": "true", "max-size": "1m"},
     "compress cannot be true when max-file is less than 2"),
    ({"compress": "1", "max-file": "3"}, "max-size is not set"),
])
def test_log_opts_rejected(opts, message):
    with pytest.raises(InvalidArgument) as info:
        parse_log_opts(opts)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
