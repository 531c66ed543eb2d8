"""The InfluxDB sink against real servers: influxd 1.x (v1 /write), queried back line for
line, including 30 s with the server down; VictoriaMetrics for the v2 API."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from argparse import Namespace
from pathlib import Path

import pytest

from shipper.sinks.base import PARSE_ERROR, Origin, Record
from shipper.sinks.influx import Encoder, InfluxSink
from tests.support.servers import influxd, victoria_metrics
from tests.support.shipper_harness import (
    PY,
    make_container,
    spawn_writers,
    start_shipper,
    stop,
    writer_argv,
)
from tests.support.wait import poll as wait_for

pytestmark = pytest.mark.slow  # a 30 s InfluxDB outage


def influxql(url: str, q: str, db: str = "logs") -> list[list]:
    query = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{query}", timeout=10) as resp:
        doc = json.loads(resp.read())
    series = doc["results"][0].get("series") or []
    return [row for s in series for row in s["values"]]


def test_logs_in_influxd_line_for_line_across_30s_of_downtime(tmp_path: Path):
    root = tmp_path / "root"
    path = make_container(root, "ab" * 32, "web", image="nginx:1.25")
    with influxd() as server:
        argv = [PY, "-m", "shipper.cli", "--root", str(root), "--sink",
                f"influxdb={server.url}", "--registry", str(tmp_path / "reg.json"),
                "--listen", "none", "--poll-interval", "0.02", "--retry-max", "2",
                "--host", "node1"]
        log = tmp_path / "shipper.log"
        sh = start_shipper(argv, log)
        try:
            spawn_writers([writer_argv(path, "a", 300, size=60, rate=3000)])[0].wait(60)
            count = "SELECT count(message) FROM container_logs"
            assert wait_for(lambda: influxql(server.url, count) == [[0, 300]], 20)
            server.stop()  # down for 30 s while the container keeps logging (and rotating)
            writer = spawn_writers([writer_argv(path, "b", 600, size=60, rate=40,
                                                max_size=8000, max_file=5)])[0]
            time.sleep(30)
            server.start()
            assert writer.wait(60) == 0
            assert wait_for(lambda: influxql(server.url, count) == [[0, 900]], 30), \
                log.read_text()[-2000:]
        finally:
            assert stop(sh) == 0
        rows = influxql(server.url, 'SELECT message, "offset", container_id, image, host, '
                        "container_name, stream FROM container_logs")
        messages = [r[1] for r in rows]
        want = [f"a {i:08d} " + "x" * 49 for i in range(300)]
        want += [f"b {i:08d} " + "x" * 49 for i in range(600)]
        assert sorted(messages) == sorted(want)  # every line, once
        assert messages[:300] == want[:300]  # in order of time
        assert {tuple(r[3:]) for r in rows} == {
            ("ab" * 32, "nginx:1.25", "node1", "web", "stdout"),
            ("ab" * 32, "nginx:1.25", "node1", "web", "stderr")}
        assert "retrying with backoff" in log.read_text()


def test_equal_timestamps_of_one_series_are_nudged_not_overwritten():
    o = Origin("id", "web", "img", host="h")
    recs = [Record(1000, f"m{i}", "stdout", i, 0, o) for i in range(3)]
    enc = Encoder()
    body, new = enc.encode(recs)
    assert [line.rsplit(" ", 1)[1] for line in body.decode().splitlines()] == [
        "1000",
        "1001",
        "1002",
    ]
    again, _ = enc.encode(recs)  # not committed: a retry is byte-identical
    assert again == body
    enc.commit(new)
    body2, _ = enc.encode([Record(1001, "late", "stdout", 9, 0, o)])
    assert body2.decode().rstrip().endswith(" 1003")
    err = Record(5, b"bad\xff \"q\"", "", 1, PARSE_ERROR, o)
    line = enc.encode([err])[0].decode()
    assert line.startswith("container_logs,container_name=web,host=h ")
    assert 'message="bad\ufffd \\"q\\""' in line and "parse_error=true" in line


def test_v2_api_through_influxdb_client_into_victoria_metrics():
    o = Origin("cid", "web", "img", host="h")
    recs = [Record(time.time_ns() - 10**9 + i, f"m{i}", "stdout", 100 + i, 0, o)
            for i in range(50)]
    with victoria_metrics() as vm:
        sink = InfluxSink.from_args(vm.url + "?bucket=logs&org=o", Namespace())
        assert sink.api == "v2"

        async def go() -> str:
            try:
                result = await sink.send(recs)
            finally:
                await sink.close()
            return result.kind

        assert asyncio.run(go()) == "ok"
        # VictoriaMetrics keeps the numeric field: one sample per record
        q = urllib.parse.urlencode({"match[]": "container_logs_offset"})
        url = f"{vm.url}/api/v1/export?{q}"

        def exported() -> list[float]:
            urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=5).read()
            with urllib.request.urlopen(url, timeout=5) as resp:
                lines = resp.read().decode().splitlines()
            return sorted(v for ln in lines for v in json.loads(ln)["values"])

        assert wait_for(lambda: exported() == [100.0 + i for i in range(50)], 15)


def test_unreachable_and_rejecting_servers():
    o = Origin("cid", "web", "img")
    rec = [Record(1, "m", "stdout", 1, 0, o)]

    async def send(sink: InfluxSink):
        try:
            return await sink.send(rec)
        finally:
            await sink.close()

    down = asyncio.run(send(InfluxSink("http://127.0.0.1:9", timeout=2)))
    assert down.kind == "retry" and "127.0.0.1:9" in down.reason
    secret = InfluxSink("http://user:s3cret@127.0.0.1:9", timeout=2)
    assert "s3cret" not in asyncio.run(send(secret)).reason
    with influxd(auth=True) as server:  # a wrong user: 401 is not retried
        q = urllib.parse.urlencode(
            {"q": "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES"}
        )
        urllib.request.urlopen(f"{server.url}/query?{q}", data=b"", timeout=10).read()
        refused = asyncio.run(send(InfluxSink(server.url, user="nobody", password="pw")))
        assert refused.kind == "fail" and "401" in refused.reason
