"""The json-file parser on lines as dockerd writes them, and on lines it must refuse."""

from __future__ import annotations

import calendar

import pytest

from formats.jsonfile.parser import LogEntry, ParseError, parse_line, parse_lines, parse_time

T0 = calendar.timegm((2024, 5, 1, 10, 11, 12, 0, 0, 0)) * 1_000_000_000


def test_a_whole_line():
    raw = b'{"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:11:12.123456789Z"}\n'
    assert parse_line(raw) == LogEntry(b"hello\n", "stdout", T0 + 123456789, False, None)


def test_escapes_are_undone():
    raw = (b'{"log":"\\u003ca\\u003e \\u0026 \\"q\\" \\\\ \\u0009 \\u2028 \\ufffd '
           b'\xf0\x9f\x98\x80\\r\\n",'
           b'"stream":"stderr","time":"2024-05-01T10:11:12Z"}')
    entry = parse_line(raw)
    assert entry.log == '<a> & "q" \\ \t \u2028 \ufffd 😀\r\n'.encode()
    assert (entry.stream, entry.time_ns, entry.partial) == ("stderr", T0, False)


def test_a_partial_has_no_newline():
    raw = b'{"log":"' + b"x" * 16384 + b'","stream":"stdout","time":"2024-05-01T10:11:12.5Z"}'
    entry = parse_line(raw)
    assert entry.partial and len(entry.log) == 16384 and entry.time_ns == T0 + 500_000_000


def test_attrs():
    raw = (b'{"log":"a\\n","stream":"stdout","attrs":{"tag":"web","env":"x=1"},'
           b'"time":"2024-05-01T10:11:12Z"}')
    assert parse_line(raw).attrs == {"tag": "web", "env": "x=1"}


@pytest.mark.parametrize("text, ns", [
    ("2024-05-01T10:11:12Z", T0),
    ("2024-05-01T10:11:12.000000001Z", T0 + 1),
    ("2024-05-01T10:11:12.1234567891234Z", T0 + 123456789),  # Go truncates past ns
    ("2024-05-01T12:11:12+02:00", T0),
    ("2024-05-01T05:41:12.5-04:30", T0 + 500_000_000),
    ("1970-01-01T00:00:00Z", 0),
    ("2024-02-29T00:00:00Z", calendar.timegm((2024, 2, 29, 0, 0, 0)) * 1_000_000_000),
])
def test_times(text, ns):
    assert parse_time(text) == ns
    assert parse_time(text) == ns  # second call hits the per-second cache


@pytest.mark.parametrize("text", [
    "2024-05-01 10:11:12Z", "2024-05-01T10:11:12", "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T10:11:12.Z", "yesterday",
    "٢٠٢٤-05-01T10:11:12Z",
])
def test_bad_times(text):
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "not JSON"),
    (b'{"log":"a\\n","stream":"stdout","time":"2024-05-01T10:11:12Z"', "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'{"log":7,"stream":"stdout","time":"2024-05-01T10:11:12Z"}', 'field "log" not a string'),
    (b'{"log":"a","time":"2024-05-01T10:11:12Z"}', 'field "stream" missing'),
    (b'{"log":"a","stream":"stdout"}', 'field "time" missing'),
    (b'{"log":1,"stream":"stdout","time":"2024-05-01T10:11:12Z"}', 'field "log" not a string'),
    (b'{"log":"a","stream":"stdout","time":"2024-05-01"}', 'bad "time"'),
    (b'{"log":"a","stream":"stdout","attrs":{"n":1},"time":"2024-05-01T10:11:12Z"}', '"attrs"'),
    (b"\x00\x00\x00\x00{\"log\":\"a\"}", "NUL padding"),
    (b"", "not JSON"),
])
def test_refused(raw, reason):
    with pytest.raises(ParseError) as info:
        parse_line(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw
    assert "\n" not in str(info.value)


def test_parse_lines_skips_through_on_error():
    good = b'{"log":"a\\n","stream":"stdout","time":"2024-05-01T10:11:12Z"}'
    errors: list[ParseError] = []
    entries = list(parse_lines([good, b"garbage", good], on_error=errors.append))
    assert [e.log for e in entries] == [b"a\n", b"a\n"]
    assert [e.raw for e in errors] == [b"garbage"]
    with pytest.raises(ParseError):
        list(parse_lines([good, b"garbage"]))


def test_missing_log_is_an_empty_message_as_moby_omits_it() -> None:
    entry = parse_line(b'{"stream":"stdout","time":"2024-05-01T10:11:12.5Z"}')
    assert entry.log == b"" and entry.stream == "stdout" and entry.partial
