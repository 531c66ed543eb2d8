"""The InfluxDB sinks: contract tests against a scripted HTTP peer (retries, no retry,
secrets), and real servers (influxd over v1, victoria-metrics over v2 through
influxdb-client) fed with samples of real box containers and queried back."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest

from cgroupstats import open_reader
from cgroupstats.model import Sample
from collector.discover import Discovery
from collector.records import Event
from collector.sinks.buffer import PointBuffer
from collector.sinks.influx import (
    InfluxSink,
    InfluxV1Sink,
    InfluxV2Sink,
    add_arguments,
    build,
    from_args,
)
from formats.delivery import Backoff, SinkError, parse_retry_after
from tests.conftest import Box
from tests.support.servers import Influxd, Reply, Scripted, influxd, scripted_http, victoria_metrics
from tests.support.wait import poll as wait_for

PASSWORD = "s3cr3t-pa55"
TOKEN = "t0ken-xyzzy-42"
FAST = Backoff(initial=0.05, maximum=0.5)


# -- real samples of real containers ---------------------------------------------------


@pytest.fixture
def containers(box: Box) -> Iterator[list[str]]:
    """Two running busybox containers with a memory limit and a whitelisted label."""
    ids = [
        box.ok("run", "-d", "-m", "64m", "--name", f"infl{i}", "-l", "team=db ops",
               "busybox", "sleep", "60").strip()
        for i in range(2)
    ]
    yield ids
    box("rm", "-f", *ids)


def points(s: Sample) -> int:
    """Lines one sample makes: cpu, mem, pids, spec, one per block device and one per
    interface (``eth0`` on the default bridge)."""
    return 4 + len(s.blkio) + len(s.network)


def read_samples(box: Box, ids: list[str]) -> list[Sample]:
    """One sample of each container, read by the collector's own discovery and readers."""
    refs = Discovery([box.root], "/sys/fs/cgroup", ["team"]).scan()
    out = []
    for cid in ids:
        reader = open_reader(refs[cid])
        try:
            out.append(reader.read())
        finally:
            reader.close()
    return out


def influxql(
    server: Influxd, q: str, db: str = "bw", auth: tuple[str, str] | None = None
) -> list[dict]:
    """Rows of the first series as dicts."""
    data = urllib.parse.urlencode({"q": q, "db": db}).encode()
    req = urllib.request.Request(server.url + "/query", data=data)
    if auth:
        req.add_header(
            "Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        )
    with urllib.request.urlopen(req, timeout=10) as resp:
        result = json.loads(resp.read())["results"][0]
    rows = []
    for series in result.get("series", []):
        rows.extend(dict(zip(series["columns"], v, strict=True)) for v in series["values"])
    return rows


EXPECTED = {  # measurement -> field -> how to get it from a Sample
    "container_cpu": {
        "usage_total": lambda s: s.cpu.usage_ns, "usage_user": lambda s: s.cpu.user_ns,
        "usage_system": lambda s: s.cpu.system_ns, "periods": lambda s: s.cpu.nr_periods,
        "throttled_periods": lambda s: s.cpu.nr_throttled,
        "throttled_time": lambda s: s.cpu.throttled_ns,
    },
    "container_mem": {
        "usage": lambda s: s.memory.usage, "working_set": lambda s: s.memory.working_set,
        "rss": lambda s: s.memory.rss, "cache": lambda s: s.memory.cache,
        "pgfault": lambda s: s.memory.pgfault, "max_usage": lambda s: s.memory.max_usage,
        "limit": lambda s: s.spec.memory_limit, "oom_kill": lambda s: s.memory.events_oom_kill,
    },
    "container_pids": {"current": lambda s: s.pids.current, "max": lambda s: s.pids.max},
    "container_spec": {
        "memory_limit": lambda s: s.spec.memory_limit, "cpu_shares": lambda s: s.spec.cpu_shares,
        "cpu_period": lambda s: s.spec.cpu_period_us, "cpuset_cpus": lambda s: s.spec.cpuset_cpus,
    },
}


def test_collector_influx_v1_real_influxd_stores_what_was_read(
    box: Box, containers: list[str]
) -> None:
    samples = read_samples(box, containers)
    assert all(s.spec.memory_limit == 64 << 20 and s.pids.current >= 1 for s in samples)
    with influxd() as server:
        sink = InfluxV1Sink(server.url, db="bw", rp="autogen", host="node1", backoff=FAST,
                            gzip="always")  # the real server takes our gzip; others send plain
        try:
            sink.write(samples)
            sink.write_events([Event(samples[0].timestamp_ns + 1, samples[0].ref, "die", 137)])
            assert sink.flush(10), sink.health()
            health = sink.health()
        finally:
            sink.close()
        assert health["write_errors"] == 0 and health["dropped_points"] == 0
        assert health["written"] == sum(map(points, samples)) + 1
        assert health["buffered_points"] == 0
        for s in samples:
            where = f"WHERE container_id = '{s.ref.id}'"
            for measurement, fields in EXPECTED.items():
                rows = influxql(server, f"SELECT * FROM {measurement} {where}")
                assert len(rows) == 1, measurement
                row = rows[0]
                assert row["host"] == "node1" and row["image"] == "busybox"
                assert row["container_name"] == s.ref.name and row["label_team"] == "db ops"
                got = {k: row[k] for k in fields}
                assert got == {k: f(s) for k, f in fields.items()}, measurement
            [net] = influxql(server, f"SELECT * FROM container_net {where}")
            eth0 = s.network["eth0"]  # the container is on the default bridge
            assert net["interface"] == "eth0"
            assert (net["rx_bytes"], net["rx_packets"], net["tx_bytes"], net["tx_packets"]) == (
                eth0.rx_bytes, eth0.rx_packets, eth0.tx_bytes, eth0.tx_packets)
            ns = influxql(server, f"SELECT usage FROM container_mem {where}", "bw")
            assert ns and ns[0]["time"]  # stored at the sample's own time (precision ns)
            exact = influxql(server, f"SELECT usage FROM container_mem {where} AND time = "
                                     f"{s.timestamp_ns}")
            assert len(exact) == 1
        events = influxql(server, "SELECT * FROM container_events")
        assert [(e["action"], e["exit_code"], e["container_name"]) for e in events] == [
            ("die", 137, samples[0].ref.name)
        ]


def vm_export(url: str, match: str) -> list[dict]:
    query = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10) as resp:
        return [json.loads(x) for x in resp.read().decode().splitlines() if x]


def test_collector_influx_v2_victoria_metrics_stores_what_was_read(
    box: Box, containers: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    samples = read_samples(box, containers)
    with victoria_metrics() as vm:
        sink = InfluxV2Sink(vm.url, org="org", bucket="bw", token=TOKEN, host="node1",
                            backoff=FAST, gzip="always")
        try:
            sink.write(samples)
            assert sink.flush(10), sink.health()
            health = sink.health()
        finally:
            sink.close()
        assert health["written"] == sum(map(points, samples)) and health["write_errors"] == 0
        assert "no buckets API" in caplog.text  # VM answers 400 there: carried on
        # VictoriaMetrics names a field <measurement>_<field> and keeps the tags.
        want = {
            (f"{m}_{k}", s.ref.id): f(s)
            for s in samples
            for m, fields in EXPECTED.items()
            for k, f in fields.items()
            if k != "cpuset_cpus"  # a string field: VM stores no strings
        }
        got: dict[tuple[str, str], float] = {}

        def exported() -> bool:
            urllib.request.urlopen(vm.url + "/internal/force_flush", timeout=10).read()
            for row in vm_export(vm.url, '{__name__=~"container_.*"}'):
                labels = row["metric"]
                assert labels["host"] == "node1" and labels["label_team"] == "db ops"
                got[labels["__name__"], labels["container_id"]] = row["values"][-1]
                assert row["timestamps"][-1] == next(
                    s.timestamp_ns // 1_000_000
                    for s in samples
                    if s.ref.id == labels["container_id"]
                )
            return want.keys() <= got.keys()

        assert wait_for(exported, 15), sorted(set(want) - set(got))
        assert {k: got[k] for k in want} == want
        assert TOKEN not in caplog.text


# -- contract tests against a scripted peer ---------------------------------------------

SAMPLE_REF_LINES = 4  # a sample with no blkio, net or PSI encodes to 4 points


@pytest.fixture
def peer() -> Iterator[Scripted]:
    with scripted_http() as server:
        yield server


@pytest.fixture(scope="module")
def one_sample() -> Sample:
    """A real sample, taken once, reused (contract tests need no fresh numbers)."""
    from cgroupstats.model import (
        ContainerRef,
        CpuStats,
        MemoryStats,
        PidsStats,
        PsiStats,
        Spec,
    )

    ref = ContainerRef(id="cd" * 32, name="c1", image="busybox", cgroup="/box/x",
                       cgroup_version=1, cgroup_paths={})
    return Sample(time.time_ns(), ref, CpuStats(1), MemoryStats(2), {}, {}, PidsStats(1),
                  PsiStats(), Spec(memory_limit=3))


def v1(url: str, **kw: object) -> InfluxV1Sink:
    options: dict[str, object] = {"db": "bw", "user": "admin", "password": PASSWORD,
                                  "host": "node1", "backoff": FAST}
    options.update(kw)
    return InfluxV1Sink(url, **options)


def test_collector_influx_v1_request_shape(peer: Scripted, one_sample: Sample) -> None:
    sink = v1(peer.url, rp="week", batch_size=3, gzip="always")
    try:
        sink.write([one_sample, replace(one_sample, timestamp_ns=one_sample.timestamp_ns + 1)])
        assert sink.flush(5)
    finally:
        sink.close()
    create = peer.requests("/query")
    assert len(create) == 1
    assert urllib.parse.parse_qs(create[0].body.decode())["q"] == ['CREATE DATABASE "bw"']
    writes = peer.requests("/write")
    assert [len(w.body.decode().splitlines()) for w in writes] == [3, 3, 2]  # batch_size
    for w in writes:
        assert w.query == {"db": "bw", "rp": "week", "precision": "ns"}
        assert w.headers["Content-Encoding"] == "gzip"
        assert w.headers["Authorization"].startswith("Basic ")
        assert PASSWORD not in json.dumps(w.query)
    lines = [x for w in writes for x in w.body.decode().splitlines()]
    assert len(set(lines)) == 8 and all(x.split(" ")[-1].isdigit() for x in lines)


def test_collector_influx_503_and_429_are_retried_honouring_retry_after(
    peer: Scripted, one_sample: Sample
) -> None:
    peer.script("/write", Reply(503, '{"error":"busy"}'),
                Reply(429, '{"error":"slow down"}', {"Retry-After": "1"}))
    sink = v1(peer.url)
    try:
        sink.write([one_sample])
        assert sink.flush(10), sink.health()
        health = sink.health()
    finally:
        sink.close()
    writes = peer.requests("/write")
    assert len(writes) == 3 and writes[0].body == writes[1].body == writes[2].body
    assert writes[2].at - writes[1].at >= 0.95  # waited the server's Retry-After
    assert health["write_errors"] == 2 and health["retries"] == 2
    assert health["written"] == SAMPLE_REF_LINES and health["dropped_points"] == 0


def test_collector_influx_400_is_not_retried_and_counted_once(
    peer: Scripted, one_sample: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    peer.script("/write", Reply(400, '{"error":"unable to parse \'x\': bad timestamp"}'))
    sink = v1(peer.url)
    try:
        sink.write([one_sample])
        assert sink.flush(5)
        time.sleep(0.3)  # a retry, if any, would show up now
        assert len(peer.requests("/write")) == 1
        health = sink.health()
        sink.write([replace(one_sample, timestamp_ns=one_sample.timestamp_ns + 1)])
        assert sink.flush(5)
    finally:
        sink.close()
    assert health["write_errors"] == 1 and health["retries"] == 0
    assert health["dropped_points"] == SAMPLE_REF_LINES and health["written"] == 0
    assert len(peer.requests("/write")) == 2  # the next batch still goes out
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1 and "bad timestamp" in rejected[0].getMessage()
    assert sink.health()["written"] == SAMPLE_REF_LINES


def test_collector_influx_connection_refused_is_retried(one_sample: Sample) -> None:
    with scripted_http() as gone:
        url = gone.url
    sink = v1(url, close_timeout=0.2)  # nobody listens there any more
    try:
        sink.write([one_sample])
        assert wait_for(lambda: sink.health()["retries"] >= 2, 5)
        assert sink.health()["buffered_points"] == SAMPLE_REF_LINES
    finally:
        sink.close()


def test_collector_influx_secrets_never_in_logs_or_errors(
    peer: Scripted, one_sample: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error":"authorization failed for admin:{PASSWORD}","message":"bad token {TOKEN}"}}'
    peer.script("/write", Reply(401, echo), Reply(503, echo))
    peer.script("/api/v2/write", Reply(401, echo), Reply(503, echo))
    peer.script("/api/v2/buckets", Reply(403, echo))
    sinks: list[InfluxSink] = [
        v1(peer.url),
        InfluxV2Sink(peer.url, org="o", bucket="b", token=TOKEN, host="n", backoff=FAST),
    ]
    try:
        for sink in sinks:
            sink.write([one_sample])
            assert sink.flush(10), sink.health()  # 401: dropped
            sink.write([replace(one_sample, timestamp_ns=one_sample.timestamp_ns + 1)])
            assert sink.flush(10), sink.health()  # 503, then 204
            assert sink.health()["write_errors"] == 2 and sink.health()["retries"] == 1
            assert PASSWORD not in repr(sink) and TOKEN not in repr(sink)
    finally:
        for sink in sinks:
            sink.close()
    assert "authorization failed for admin:***" in caplog.text  # the message, redacted
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text
    assert peer.requests("/api/v2/write")[0].headers["Authorization"] == f"Token {TOKEN}"
    with pytest.raises(SinkError) as err:
        build("influxdb-v1", f"ftp://admin:{PASSWORD}@127.0.0.1/", argparse.Namespace())
    assert PASSWORD not in str(err.value)


def test_collector_influx_v2_request_shape_and_missing_bucket_api(
    peer: Scripted, one_sample: Sample
) -> None:
    peer.script("/api/v2/buckets", Reply(404, '{"message":"not found"}'))
    sink = InfluxV2Sink(peer.url, org="acme", bucket="bw", token=TOKEN, host="n", backoff=FAST,
                        gzip="always")
    try:
        sink.write([one_sample])
        assert sink.flush(10), sink.health()
    finally:
        sink.close()
    assert peer.requests("/api/v2/buckets")  # asked, got 404: carried on
    (write,) = peer.requests("/api/v2/write")
    assert write.query == {"org": "acme", "bucket": "bw", "precision": "ns"}
    assert write.headers["Content-Encoding"] == "gzip"
    assert len(write.body.decode().splitlines()) == SAMPLE_REF_LINES


# -- the buffer and the policy ---------------------------------------------------------


def test_collector_influx_buffer_drops_oldest_and_acks_exactly() -> None:
    buf = PointBuffer(5)
    buf.extend(["a", "b", "c"])
    start, batch = buf.peek(2)
    assert (start, batch) == (0, ["a", "b"])
    buf.extend(["d", "e", "f", "g"])  # two over: "a" and "b" (in flight) are dropped
    assert list(buf.lines) == ["c", "d", "e", "f", "g"] and buf.dropped == 2
    assert buf.ack(start, len(batch)) == 0  # delivered after all: written, not dropped
    assert buf.dropped == 0 and list(buf.lines) == ["c", "d", "e", "f", "g"]
    start, batch = buf.peek(3)
    buf.extend(["h"])  # drops "c", part of the batch
    assert buf.ack(start, 3) == 2 and buf.dropped == 0 and list(buf.lines) == ["f", "g", "h"]
    buf.extend([str(i) for i in range(12)])  # more than fits at once: the newest 5 stay
    assert list(buf.lines) == ["7", "8", "9", "10", "11"] and buf.dropped == 10


def test_collector_influx_backoff_is_capped_full_jitter() -> None:
    b = Backoff(initial=0.5, maximum=4.0)
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (30, 4.0)):
        waits = [b.delay(attempt) for _ in range(300)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8 and min(waits) < ceiling * 0.2  # full jitter
    assert b.delay(1, retry_after=3.0) >= 3.0
    assert b.delay(1, retry_after=10_000) == 300.0  # a server's say-so, within reason
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


# -- flags -----------------------------------------------------------------------------


def test_collector_influx_flags_build_the_chosen_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOXWATCH_INFLUX_TOKEN", TOKEN)
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--batch-size", type=int, default=1234)  # owned by someone else
    add_arguments(parser)
    args = parser.parse_args([])
    assert from_args(args) == []  # no --influx-url: no sink
    args = parser.parse_args(["--influx-url", "http://127.0.0.1:9", "--influx-api", "v1",
                              "--influx-db", "m", "--influx-user", "u", "--influx-password",
                              PASSWORD, "--no-influx-create-db", "--buffer-max-points", "10",
                              "--interval", "250ms"])
    (sink,) = from_args(args)
    try:
        assert isinstance(sink, InfluxV1Sink)
        t = sink.sender.transport
        assert (t.db, t.user, t.password, t.create_db) == ("m", "u", PASSWORD, False)
        assert sink.sender.buffer.max_points == 10 and sink.sender.batch_size == 1234
        assert sink.sender.flush_interval == 0.25
    finally:
        sink.close()
    assert sink.encoder.host == socket.gethostname()  # no --host: the hostname
    args = parser.parse_args(["--influx-url", "http://127.0.0.1:9", "--influx-org", "o"])
    args.host = "node-7"  # the collector's --host (the stack's host)
    sink2 = InfluxV2Sink.from_args(args.influx_url, args)
    try:
        assert isinstance(sink2, InfluxV2Sink)
        assert sink2.sender.transport.token == TOKEN
        assert sink2.encoder.host == "node-7"
    finally:
        sink2.close()
    with pytest.raises(SinkError):
        from_args(parser.parse_args(["--influx-url", "http://127.0.0.1:9", "--batch-size", "0"]))


# -- outages against a real influxd ----------------------------------------------------


def _epoch_ns(server: Influxd) -> list[int]:
    data = urllib.parse.urlencode({"q": "SELECT usage FROM container_mem", "db": "bw",
                                   "epoch": "ns"}).encode()
    with urllib.request.urlopen(server.url + "/query", data=data, timeout=10) as resp:
        result = json.loads(resp.read())["results"][0]
    return sorted(v[0] for s in result.get("series", []) for v in s["values"])


@pytest.mark.slow
def test_collector_influx_20s_outage_loses_nothing_that_fits(
    box: Box, containers: list[str]
) -> None:
    """Writing every 0.5 s through a 20 s outage: every point arrives after the restart."""
    refs = Discovery([box.root], "/sys/fs/cgroup").scan()
    reader = open_reader(refs[containers[0]])
    sent: list[int] = []
    lines = 0
    try:
        with influxd() as server:
            sink = InfluxV1Sink(server.url, db="bw", host="node1", flush_interval=0.5,
                                backoff=Backoff(initial=0.2, maximum=1.0))
            try:
                def tick(seconds: float) -> None:
                    nonlocal lines
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        s = reader.read()
                        sent.append(s.timestamp_ns)
                        lines += points(s)
                        sink.write([s])
                        time.sleep(0.5)

                tick(1.5)
                server.stop()
                before = lines
                tick(20.0)
                assert len(sent) >= 38  # a sample every 0.5 s
                assert sink.health()["buffered_points"] >= lines - before  # all of the outage's
                server.start()
                tick(1.5)
                assert sink.flush(15), sink.health()
                health = sink.health()
            finally:
                sink.close()
            assert _epoch_ns(server) == sent
    finally:
        reader.close()
    assert health["dropped_points"] == 0 and health["written"] == lines
    assert health["retries"] >= 1 and health["buffered_points"] == 0


def test_collector_influx_full_buffer_drops_oldest_and_counts(
    box: Box, containers: list[str]
) -> None:
    samples = read_samples(box, containers[:1])
    per = points(samples[0])
    with influxd() as server:
        sink = InfluxV1Sink(server.url, db="bw", host="node1", max_points=per * 3,
                            flush_interval=0.1, backoff=Backoff(0.1, 0.3))
        try:
            assert sink.flush(5)  # database created while up
            server.stop()
            stamps = [samples[0].timestamp_ns + i for i in range(10)]
            for ts in stamps:
                sink.write([replace(samples[0], timestamp_ns=ts)])
            assert wait_for(lambda: sink.health()["retries"] >= 1, 5)
            assert sink.health()["dropped_points"] == per * 7
            assert sink.health()["buffered_points"] == per * 3
            server.start()
            assert sink.flush(10), sink.health()
            health = sink.health()
        finally:
            sink.close()
        assert _epoch_ns(server) == stamps[-3:]  # the newest three samples survived
    assert health["written"] == per * 3 and health["dropped_points"] == per * 7


def test_collector_influx_v1_auth_real_influxd(
    one_sample: Sample, caplog: pytest.LogCaptureFixture
) -> None:
    with influxd(auth=True) as server:
        data = urllib.parse.urlencode(
            {"q": f"CREATE USER admin WITH PASSWORD '{PASSWORD}' WITH ALL PRIVILEGES"}
        ).encode()
        urllib.request.urlopen(server.url + "/query", data=data, timeout=10).read()
        good = v1(server.url)
        bad = v1(server.url, password="wrong-" + PASSWORD)
        try:
            good.write([one_sample])
            bad.write([one_sample])
            assert good.flush(10) and bad.flush(10)
            assert good.health()["written"] == SAMPLE_REF_LINES
            assert bad.health()["write_errors"] >= 1 and bad.health()["written"] == 0
        finally:
            good.close()
            bad.close()
        rows = influxql(server, "SELECT usage FROM container_mem", auth=("admin", PASSWORD))
        assert len(rows) == 1
    assert "authorization failed" in caplog.text and PASSWORD not in caplog.text



def test_collector_influx_v2_victoria_outage_is_retried_through_the_client(
    one_sample: Sample,
) -> None:
    """Connection errors raised inside influxdb-client are retried like v1's."""
    with victoria_metrics() as vm:
        sink = InfluxV2Sink(vm.url, org="o", bucket="b", host="node1", flush_interval=0.1,
                            backoff=Backoff(0.1, 0.3))
        try:
            assert sink.flush(5)
            vm.stop()
            stamps = [one_sample.timestamp_ns + i * 1_000_000 for i in range(5)]  # distinct ms
            for ts in stamps:
                sink.write([replace(one_sample, timestamp_ns=ts)])
            assert wait_for(lambda: sink.health()["retries"] >= 2, 5)
            vm.start()
            assert sink.flush(10), sink.health()
            health = sink.health()
        finally:
            sink.close()

        def all_there() -> bool:
            urllib.request.urlopen(vm.url + "/internal/force_flush", timeout=10).read()
            rows = vm_export(vm.url, "container_mem_usage")
            return bool(rows) and len(rows[0]["values"]) == len(stamps)

        assert wait_for(all_there, 15)
    assert health["written"] == 4 * len(stamps) and health["dropped_points"] == 0


def test_collector_influx_gzip_only_off_loopback_by_default(
    peer: Scripted, one_sample: Sample
) -> None:
    """auto: plain bodies to a loopback server (compression would only cost CPU on both
    ends), gzip to anything else; always/never force it; a bad mode is refused."""
    from formats.delivery import wants_gzip

    assert not wants_gzip("http://127.0.0.1:8086") and not wants_gzip("http://[::1]:8086")
    assert not wants_gzip("http://localhost:8086") and not wants_gzip("http://127.8.9.1")
    assert wants_gzip("http://influx.example:8086") and wants_gzip("https://10.0.0.5:8086")
    assert wants_gzip("http://127.0.0.1", "always") and not wants_gzip("http://10.0.0.5", "never")
    with pytest.raises(ValueError, match="'sometimes'"):
        wants_gzip("http://127.0.0.1", "sometimes")
    for make in (lambda: v1(peer.url),
                 lambda: InfluxV2Sink(peer.url, org="o", bucket="b", token=TOKEN, host="n",
                                      backoff=FAST)):
        seen = len(peer.requests())
        sink = make()
        try:
            sink.write([one_sample])
            assert sink.flush(10), sink.health()
        finally:
            sink.close()
        (write,) = [r for r in peer.requests()[seen:] if r.path.endswith("/write")]
        assert (
            "Content-Encoding" not in write.headers
            or write.headers["Content-Encoding"] == "identity"
        )
        assert write.body.decode().startswith("container_")  # plain line protocol
