"""The line-protocol encoder: escaping checked by round trips through a small parser of
the spec (and through a real influxd), and every model field landing in its field."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgroupstats.model import (
    ContainerRef,
    CpuStats,
    IoStats,
    MemoryStats,
    NetStats,
    PidsStats,
    Psi,
    PsiLine,
    PsiStats,
    Sample,
    Spec,
)
from collector.lineproto import Encoder
from formats.lineproto import escape_tag, format_value, line, tag_set
from tests.support.servers import Influxd, influxd

Value = int | float | bool | str

# -- a parser of the line-protocol spec (2.x: "\\" before , = space \\ is an escape) -----


def _scan(text: str, i: int, stops: str) -> tuple[str, int]:
    """Read an escaped token from ``i`` up to an unescaped char of ``stops``."""
    out = []
    while i < len(text) and text[i] not in stops:
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",= \\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i


def _value(text: str, i: int) -> tuple[Value, int]:
    if text[i] == '"':
        out, i = [], i + 1
        while text[i] != '"':
            if text[i] == "\\" and text[i + 1] in '"\\':
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1
    end = i
    while end < len(text) and text[end] not in ", ":
        end += 1
    raw = text[i:end]
    if raw.endswith("i"):
        return int(raw[:-1]), end
    if raw in ("true", "false"):
        return raw == "true", end
    return float(raw), end


def parse_line(text: str) -> tuple[str, dict[str, str], dict[str, Value], int]:
    """(measurement, tags, fields, timestamp) of one line; AssertionError if malformed."""
    assert "\n" not in text, "a point must be one line"
    measurement, i = _scan(text, 0, ", ")
    tags: dict[str, str] = {}
    while text[i] == ",":
        key, i = _scan(text, i + 1, "=")
        assert text[i] == "="
        value, i = _scan(text, i + 1, ", =")
        assert key and value, "empty tag key or value"
        tags[key] = value
    assert text[i] == " "
    fields: dict[str, Value] = {}
    i += 1
    while True:
        key, i = _scan(text, i, "=")
        fields[key], i = _value(text, i + 1)
        if text[i] == " ":
            break
        assert text[i] == ","
        i += 1
    return measurement, tags, fields, int(text[i + 1 :])


# -- escaping ------------------------------------------------------------------------

CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}


def as_read(value: str) -> str:
    """What a reader gets back of a tag: control characters arrive as their escapes."""
    return "".join(CONTROL.get(c, c) for c in value)


def as_read_string(value: str) -> str:
    """What a reader gets back of a string field: line breaks arrive as escapes."""
    return value.replace("\n", "\\n").replace("\r", "\\r")


tag_text = st.text(min_size=1, max_size=30)


@given(
    measurement=st.text(st.characters(blacklist_characters="\n\r"), min_size=1, max_size=20),
    tags=st.dictionaries(tag_text, tag_text, max_size=6),
    key=tag_text,
    text=st.text(max_size=60),
    number=st.integers(-(2**63), 2**63 - 1),
)
def test_collector_lineproto_any_tag_and_field_round_trips(
    measurement: str, tags: dict[str, str], key: str, text: str, number: int
) -> None:
    fields: dict[str, object] = {key: text, key + "_n": number}
    encoded = line(measurement, tag_set(tags.items()), fields, 1_700_000_000_123_456_789)
    assert encoded is not None
    got_m, got_tags, got_fields, ts = parse_line(encoded)
    assert got_m == measurement
    assert got_tags == {as_read(k): as_read(v) for k, v in tags.items()}
    assert got_fields == {as_read(key): as_read_string(text), as_read(key) + "_n": number}
    assert ts == 1_700_000_000_123_456_789


def test_collector_lineproto_escapes_by_hand() -> None:
    assert escape_tag("a b,c=d\\e") == "a\\ b\\,c\\=d\\\\e"
    assert tag_set([("z", "1"), ("a", "x y"), ("empty", "")]) == ",a=x\\ y,z=1"
    assert line("m", "", {"s": 'say "hi" \\o/'}, 5) == 'm s="say \\"hi\\" \\\\o/" 5'
    assert line("m", "", {"s": "two\nlines"}, 5) == 'm s="two\\nlines" 5'  # one line per point


def test_collector_lineproto_value_types() -> None:
    assert format_value(3) == "3i"
    assert format_value(2**70) == f"{2**63 - 1}i"  # clamped to int64, never invalid
    assert format_value(True) == "true"
    assert format_value(0.25) == "0.25"
    assert format_value(math.nan) is None and format_value(math.inf) is None
    assert line("m", "", {"a": math.nan, "b": 1.5}, 1) == "m b=1.5 1"
    assert line("m", "", {"a": math.inf}, 1) is None  # no field left: no point


# -- samples -------------------------------------------------------------------------

REF = ContainerRef(
    id="ab" * 32, name="web", image="busybox:1.36", cgroup="/box/" + "ab" * 32,
    cgroup_version=1, cgroup_paths={"memory": "/x"}, labels={"com.example.team": "db ops"},
)
SAMPLE = Sample(
    timestamp_ns=1_700_000_000_000_000_007,
    ref=REF,
    cpu=CpuStats(11, 7, 3, (5, 6), 100, 20, 3_000_000_000, 9, 40_000),
    memory=MemoryStats(1000, 900, 500, 400, 30, 2, 4, 50, 6, 2000, 0, 0, 0, 1, kernel=70,
                       active_file=80, inactive_file=100, file_dirty=12, file_writeback=13,
                       pgscan=14, pgsteal=15, refault_anon=16, refault_file=17),
    blkio={"8:0": IoStats(4096, 8192, 1, 2, by_op={"Read": 4096, "Write": 8192, "Sync": 12288}),
           "253:1": IoStats(0, 512, 0, 1)},
    network={"eth0": NetStats(1, 2, 3, 4, 5, 6, 7, 8)},
    pids=PidsStats(3, 64),
    psi=PsiStats(cpu=Psi(PsiLine(1.5, 0.5, 0.25, 1234), PsiLine(0.0, 0.0, 0.0, 99))),
    spec=Spec(67108864, 134217728, 1024, 50000, 100000, 512, "0-1", "0", 64),
)
BASE_TAGS = {
    "host": "node1",
    "container_name": "web",
    "container_id": "ab" * 32,
    "image": "busybox:1.36",
    "label_com.example.team": "db ops",
}


def test_collector_lineproto_sample_fields_carry_model_values() -> None:
    points = [parse_line(x) for x in Encoder("node1").sample(SAMPLE)]
    by = {(m, t.get("device") or t.get("interface") or t.get("resource") or ""): (t, f, ts)
          for m, t, f, ts in points}
    assert sorted(by) == sorted([
        ("container_cpu", ""), ("container_mem", ""), ("container_pids", ""),
        ("container_spec", ""), ("container_blkio", "8:0"), ("container_blkio", "253:1"),
        ("container_net", "eth0"), ("container_psi", "cpu"),
    ])
    for (m, extra), (tags, _, ts) in by.items():
        assert ts == SAMPLE.timestamp_ns
        want = dict(BASE_TAGS)
        if extra:
            want[{"container_blkio": "device", "container_net": "interface",
                  "container_psi": "resource"}[m]] = extra
        assert tags == want, m
    assert by["container_cpu", ""][1] == {
        "usage_total": 11, "usage_user": 7, "usage_system": 3, "periods": 100,
        "throttled_periods": 20, "throttled_time": 3_000_000_000, "burst_periods": 9,
        "burst_time": 40_000,
    }
    assert by["container_mem", ""][1] == {
        "usage": 1000, "working_set": 900, "rss": 500, "cache": 400, "mapped_file": 30,
        "swap": 2, "failcnt": 4, "pgfault": 50, "pgmajfault": 6, "max_usage": 2000,
        "limit": 67108864, "oom_kill": 1, "kernel": 70, "active_file": 80,
        "inactive_file": 100, "file_dirty": 12, "file_writeback": 13, "pgscan": 14,
        "pgsteal": 15, "workingset_refault_anon": 16, "workingset_refault_file": 17,
    }
    assert by["container_blkio", "8:0"][1] == {
        "read_bytes": 4096, "write_bytes": 8192, "reads": 1, "writes": 2, "sync_bytes": 12288}

    assert by["container_net", "eth0"][1] == {
        "rx_bytes": 1, "rx_packets": 2, "rx_errors": 3, "rx_dropped": 4,
        "tx_bytes": 5, "tx_packets": 6, "tx_errors": 7, "tx_dropped": 8,
    }
    assert by["container_pids", ""][1] == {"current": 3, "max": 64}
    assert by["container_spec", ""][1] == {
        "memory_limit": 67108864, "swap_limit": 134217728, "reservation": 1024,
        "cpu_quota": 50000, "cpu_period": 100000, "cpu_shares": 512, "pids_max": 64,
        "cpuset_cpus": "0-1", "cpuset_mems": "0", "health_state": -1, "created": 0.0,
    }
    assert by["container_psi", "cpu"][1] == {
        "some_avg10": 1.5, "some_avg60": 0.5, "some_avg300": 0.25, "some_total": 1234,
        "full_avg10": 0.0, "full_avg60": 0.0, "full_avg300": 0.0, "full_total": 99,
    }


def test_collector_lineproto_empty_tags_left_out_and_new_ref_seen() -> None:
    enc = Encoder("node1")
    raw = ContainerRef(id="/box/raw", name="", image="", cgroup="/box/raw",
                       cgroup_version=2, cgroup_paths={"unified": "/x"})
    from dataclasses import replace

    _, tags, _, _ = parse_line(enc.sample(replace(SAMPLE, ref=raw))[0])
    assert tags == {"host": "node1", "container_id": "/box/raw"}
    renamed = replace(REF, name="web2", labels={})
    _, tags, _, _ = parse_line(enc.sample(replace(SAMPLE, ref=renamed))[0])
    assert tags["container_name"] == "web2" and "label_com.example.team" not in tags


def test_collector_lineproto_event_line() -> None:
    m, tags, fields, ts = parse_line(Encoder("node1").event(42, REF, "die", 137))
    assert (m, ts) == ("container_events", 42)
    assert tags == {**BASE_TAGS, "action": "die"}
    assert fields == {"exit_code": 137, "message": "container web die (exit code 137)"}
    _, _, fields, _ = parse_line(Encoder("node1").event(43, REF, "start"))
    assert fields["exit_code"] == -1


# -- a real influxd reads the same thing back ------------------------------------------


@pytest.fixture(scope="module")
def influx_db() -> Iterator[Influxd]:
    with influxd() as server:
        _query(server, 'CREATE DATABASE "lp"')
        yield server


def _query(server: Influxd, q: str) -> dict:
    data = urllib.parse.urlencode({"q": q, "db": "lp"}).encode()
    with urllib.request.urlopen(server.url + "/query", data=data, timeout=10) as resp:
        return json.loads(resp.read())


# InfluxDB 1.x keeps "\\" in tags literally (see formats.lineproto), so no backslash here.
influx_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"),
    min_size=1, max_size=20,
)
_seq = iter(range(1, 10**9))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=influx_text, text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_collector_lineproto_influxd_returns_tag_and_string_exactly(
    influx_db: Influxd, value: str, text: str
) -> None:
    n = next(_seq)
    body = line("rt", tag_set([("k", value), ("n", str(n))]), {"s": text}, n)
    assert body is not None
    req = urllib.request.Request(influx_db.url + "/write?db=lp&precision=ns", data=body.encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204
    got = _query(influx_db, f"SELECT s, k FROM rt WHERE n = '{n}'")
    assert got["results"][0]["series"][0]["values"][0][1:] == [as_read_string(text), value]


def test_collector_lineproto_reused_objects_are_restamped_new_ones_rewritten() -> None:
    """Lines are kept per container with the object they were made from: the same
    objects (an idle container) give the same lines with the new timestamp; a new object
    with other values, or a new spec under the same memory object, is written afresh."""
    from dataclasses import replace

    enc = Encoder("node1")
    first = enc.sample(SAMPLE)
    later = replace(SAMPLE, timestamp_ns=SAMPLE.timestamp_ns + 10**9)
    again = enc.sample(later)
    assert [x.rsplit(" ", 1)[0] for x in again] == [x.rsplit(" ", 1)[0] for x in first]
    assert all(x.endswith(f" {later.timestamp_ns}") for x in again)
    moved = replace(later, cpu=replace(SAMPLE.cpu, usage_ns=12),
                    spec=replace(SAMPLE.spec, memory_limit=1 << 20))
    by = {parse_line(x)[0]: parse_line(x)[2] for x in enc.sample(moved)
          if not x.startswith(("container_blkio", "container_net", "container_psi"))}
    assert by["container_cpu"]["usage_total"] == 12
    assert (
        by["container_mem"]["limit"] == 1 << 20 and by["container_spec"]["memory_limit"] == 1 << 20
    )


def test_collector_lineproto_opt_in_groups_and_switched_off_categories() -> None:
    """cAdvisor's opt-in groups as their own measurements; a category switched off
    writes no measurement (the same switches as /metrics)."""
    from tests.collector.test_opt_in_groups import with_extras

    sample = with_extras(SAMPLE)
    every = {"cpu", "memory", "diskIO", "network", "pressure", "cpuLoad", "process", "tcp",
             "udp", "hugetlb", "memory_numa", "cpuset"}
    points = [parse_line(x) for x in Encoder("node1", every).sample(sample)]
    by = {}
    for m, tags, fields, _ in points:
        key = tags.get("family") or tags.get("pagesize") or tags.get("node", "")
        by[m, key, tags.get("scope", "")] = fields
    assert by["container_tasks", "", ""] == {
        "sleeping": 3, "running": 1, "stopped": 0, "uninterruptible": 1, "iowaiting": 0,
        "load_average_10s": 1500.0, "load_d_average_10s": 250.0}
    assert by["container_process", "", ""] == {
        "processes": 2, "file_descriptors": 17, "sockets": 3, "threads": 3, "threads_max": 64,
        "ulimit_max_open_files": 1024}
    assert by["container_tcp", "tcp", ""] == {"established": 2, "listen": 1}
    assert by["container_tcp", "tcp6", ""] == {"listen": 1}
    assert ("container_udp", "udp6", "") not in by  # nothing read for udp6
    assert by["container_hugetlb", "2MB", ""] == {"usage": 2 << 20, "max_usage": 4 << 20,
                                                  "failcnt": 1}
    assert by["container_numa", "0", "hierarchy"] == {"file": 12}
    assert by["container_numa", "0", "container"] == {"anon": 3}
    assert by["container_cpuset", "", ""] == {"memory_migrate": 0}
    # the default set: no opt-in measurement; network and pressure off: none of theirs
    lines = Encoder("node1", {"cpu", "memory", "diskIO"}).sample(sample)
    names = {ln.split(",", 1)[0] for ln in lines}
    assert names == {"container_cpu", "container_mem", "container_pids", "container_spec",
                     "container_blkio"}
