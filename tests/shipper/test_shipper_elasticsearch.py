"""The Elasticsearch sink against a contract server that follows the documented _bulk
behaviour (tests/support/contract_elasticsearch.py) and checks every request body."""

from __future__ import annotations

import argparse
import asyncio
import calendar
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shipper.sinks.base import PARTIAL, TRUNCATED, Origin, Record, Result, SinkError
from shipper.sinks.elasticsearch import ElasticsearchSink, add_arguments, document, index_template
from tests.support.contract_elasticsearch import ElasticsearchContract

# 2024-05-01T23:59:59Z: a batch around midnight spans two daily indices.
T0 = calendar.timegm((2024, 5, 1, 23, 59, 59, 0, 0, 0)) * 1_000_000_000
WEB = Origin("a" * 64, "web", "nginx:1.25", {"com.example.team": "core", "tier": "front"},
             host="node1", path="/var/lib/box/containers/a/a-json.log", dev=2049, ino=77,
             fingerprint="f" * 40)
DB = Origin("b" * 64, "db", "postgres:16", {"team": "42"}, host="node1", dev=2049, ino=78,
            fingerprint="e" * 40)


def rec(origin: Origin, i: int, *, ts: int | None = None, message: str | None = None,
        flags: int = 0, stream: str = "stdout") -> Record:
    return Record(T0 + i * 100_000_000 if ts is None else ts, message or f"line {i}", stream,
                  100 * (i + 1), flags, origin)


async def deliver(sink: ElasticsearchSink, batch: list[Record], attempts: int = 10,
                  cap: float = 0.05) -> tuple[list[Result], list[list[Record]], list[Record]]:
    """What the pipeline does: resend only what a result says to retry, with backoff (the
    server's Retry-After, capped for speed). Returns results, what each attempt carried,
    and the records rejected."""
    results: list[Result] = []
    sent: list[list[Record]] = []
    rejected: list[Record] = []
    pending = list(batch)
    delay = 0.01
    for _ in range(attempts):
        sent.append(pending)
        result = await sink.send(pending)
        results.append(result)
        if result.kind == "ok":
            return results, sent, rejected
        if result.kind == "fail":
            return results, sent, rejected + pending
        if result.kind == "partial":
            rejected += [r for r, a, t in zip(pending, result.acked, result.retry_mask,
                                              strict=True) if not a and not t]
            pending = [r for r, t in zip(pending, result.retry_mask, strict=True) if t]
            if not pending:
                return results, sent, rejected
        await asyncio.sleep(min(result.after if result.after is not None else delay, cap))
        delay *= 2
    raise AssertionError(f"not delivered after {attempts} attempts: {results[-1]}")


def run(sink: ElasticsearchSink,
        batch: list[Record]) -> tuple[list[Result], list[list[Record]], list[Record]]:
    async def go() -> tuple[list[Result], list[list[Record]], list[Record]]:
        try:
            return await deliver(sink, batch)
        finally:
            await sink.close()
    return asyncio.run(go())


def send_once(sink: ElasticsearchSink, batch: list[Record]) -> Result:
    async def go() -> Result:
        try:
            return await sink.send(batch)
        finally:
            await sink.close()
    return asyncio.run(go())


@pytest.fixture
def es() -> Iterator[ElasticsearchContract]:
    with ElasticsearchContract() as server:
        yield server
        assert server.violations == []


def test_documents_daily_indices_and_request_format(es: ElasticsearchContract) -> None:
    batch = [rec(WEB, i) for i in range(15)] + [rec(DB, 3, flags=PARTIAL | TRUNCATED,
                                                    stream="stderr")]
    results, _, _ = run(ElasticsearchSink(es.url), batch)
    assert results == [Result.ok()]
    assert es.index_names() == ["boxwatch-logs-2024.05.01", "boxwatch-logs-2024.05.02"]
    day1 = {d["@timestamp"] for d in es.docs("boxwatch-logs-2024.05.01").values()}
    day2 = {d["@timestamp"] for d in es.docs("boxwatch-logs-2024.05.02").values()}
    assert len(day1) == 10 and all(t.startswith("2024-05-01T23:59:59.") for t in day1)
    assert len(day2) == 5 and all(t.startswith("2024-05-02T00:00:00.") for t in day2)
    docs = es.docs()
    assert docs[batch[3].uid] == {
        "@timestamp": "2024-05-01T23:59:59.300000000Z", "message": "line 3", "stream": "stdout",
        "container": {"id": "a" * 64, "name": "web", "image": {"name": "nginx:1.25"}},
        "host": {"name": "node1"},
        "log": {"offset": 400, "file": {"path": "/var/lib/box/containers/a/a-json.log"}},
        "labels": {"com_example_team": "core", "tier": "front"}}
    assert docs[batch[-1].uid]["log"]["flags"] == ["partial", "truncated"]
    assert docs[batch[-1].uid]["stream"] == "stderr"
    (req,) = es.requests
    assert req.path == "/_bulk" and req.headers["Content-Type"] == "application/x-ndjson"
    assert req.body.endswith(b"\n") and "Authorization" not in req.headers
    lines = req.body.split(b"\n")[:-1]
    assert len(lines) == 32
    assert orjson.loads(lines[0]) == {"create": {"_index": "boxwatch-logs-2024.05.01",
                                                 "_id": batch[0].uid}}


def test_the_same_batch_twice_is_409_and_counted_as_already_there(
        es: ElasticsearchContract) -> None:
    batch = [rec(WEB, i) for i in range(8)]
    sink = ElasticsearchSink(es.url)
    assert run(sink, batch)[0] == [Result.ok()]
    again = ElasticsearchSink(es.url)  # e.g. after a crash before the checkpoint
    assert run(again, batch)[0] == [Result.ok()]
    items = orjson.loads(orjson.dumps(es.requests[-1].response))["items"]
    assert [it["create"]["status"] for it in items] == [409] * 8
    assert items[0]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert again.health()["already_there"] == 8 and again.health()["sent_records"] == 8
    assert len(es.docs()) == 8


def test_item_429s_retry_only_those_items(es: ElasticsearchContract) -> None:
    es.reject_items(lambda doc: doc["log"]["offset"] % 300 == 0, times=2)
    batch = [rec(WEB, i) for i in range(9)]  # offsets 100..900; 300, 600, 900 rejected
    sink = ElasticsearchSink(es.url)
    results, sent, rejected = run(sink, batch)
    assert [r.kind for r in results] == ["partial", "retry", "ok"] and rejected == []
    assert results[0].acked == tuple(r.offset % 300 != 0 for r in batch)
    assert results[0].retry_mask == tuple(r.offset % 300 == 0 for r in batch)
    assert [r.offset for r in sent[1]] == [r.offset for r in sent[2]] == [300, 600, 900]
    second = es.requests[1].body.split(b"\n")
    assert len(second) == 7  # only the three rejected documents went again
    assert len(es.docs()) == 9 and sink.health()["already_there"] == 0


def test_mapping_errors_are_dead_lettered_not_retried(es: ElasticsearchContract,
                                                      tmp_path: Path) -> None:
    es.put_template(["boxwatch-logs-*"], {"labels.team": "long"})
    dead = tmp_path / "dead.ndjson"
    batch = [rec(DB, 0), rec(WEB, 1), rec(Origin("c" * 64, "cache", "redis", {"team": "infra"},
                                                  host="node1", dev=1, ino=2), 2), rec(DB, 3)]
    sink = ElasticsearchSink(es.url, dead_letter=dead)
    results, sent, rejected = run(sink, batch)
    assert [r.kind for r in results] == ["partial"] and len(sent) == 1
    assert rejected == [batch[2]]
    assert "mapper_parsing_exception" in results[0].reason
    (line,) = dead.read_bytes().splitlines()
    letter = orjson.loads(line)
    assert letter["status"] == 400 and letter["_id"] == batch[2].uid
    assert letter["error"]["type"] == "mapper_parsing_exception"
    assert "failed to parse field [labels.team] of type [long]" in letter["error"]["reason"]
    assert letter["document"]["container"]["name"] == "cache"
    assert letter["index"] == "boxwatch-logs-2024.05.01"
    assert sink.health()["dead_lettered"] == 1 and sink.health()["rejected_records"] == 1
    assert len(es.docs()) == 3


def test_an_unwritable_dead_letter_file_means_retry_not_loss(es: ElasticsearchContract,
                                                             tmp_path: Path) -> None:
    es.put_template(["boxwatch-logs-*"], {"message": "long"})
    sink = ElasticsearchSink(es.url, dead_letter=tmp_path / "missing" / "dead.ndjson")
    result = send_once(sink, [rec(WEB, 0)])
    assert result.kind == "retry"


def test_dynamic_mapping_conflicts_without_a_template(es: ElasticsearchContract) -> None:
    """Why the template matters: the first message of a day fixes the field's type."""
    batch = [rec(WEB, 0, message="2024-05-01"), rec(WEB, 1, message="hello")]
    result = send_once(ElasticsearchSink(es.url), batch)
    assert result.kind == "fail" or (result.kind == "partial" and result.acked == (True, False))
    assert "of type [date]" in result.reason


def test_whole_request_429_and_503_are_retried(es: ElasticsearchContract) -> None:
    es.fail_next(429, 1, retry_after="2")
    es.fail_next(503, 1)
    batch = [rec(WEB, i) for i in range(4)]
    results, _, _ = run(ElasticsearchSink(es.url), batch)
    assert [(r.kind, r.after) for r in results] == [("retry", 2.0), ("retry", None),
                                                    ("ok", None)]
    assert "es_rejected_execution_exception" in results[0].reason
    assert len(es.docs()) == 4


def test_requests_are_split_by_size(es: ElasticsearchContract) -> None:
    batch = [rec(WEB, i, message="x" * 10_000) for i in range(20)]
    results, _, _ = run(ElasticsearchSink(es.url, max_request_bytes=50_000), batch)
    assert results == [Result.ok()]
    assert len(es.requests) >= 4 and all(len(r.body) <= 50_000 for r in es.requests)
    assert all(r.body.endswith(b"\n") for r in es.requests)
    assert len(es.docs()) == 20


def test_api_key_and_basic_auth_never_logged(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    key = tmp_path / "key"
    key.write_text("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--es-api-key-file", str(key), "--es-index", "logs-%Y.%m"])
    want = "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    with ElasticsearchContract(expect_authorization=want) as es, \
            caplog.at_level(logging.DEBUG):
        sink = ElasticsearchSink.from_args(es.url, args)
        es.fail_next(503)
        assert [r.kind for r in run(sink, [rec(WEB, 0)])[0]] == ["retry", "ok"]
        assert es.index_names() == ["logs-2024.05"]
        basic = ElasticsearchSink(es.url.replace("http://", "http://elastic:changeme@"))
        result = send_once(basic, [rec(WEB, 1)])
        assert result.kind == "retry" and "security_exception" in result.reason  # 401
        assert es.requests[-1].headers["Authorization"] == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
        assert es.violations == []
    assert "VnVh" not in caplog.text and "changeme" not in caplog.text
    assert "changeme" not in repr(basic) and "VnVh" not in repr(sink)


def test_the_contract_server_refuses_a_body_without_final_newline(
        es: ElasticsearchContract) -> None:
    """The format check can fail: what Elasticsearch answers to a body without ``\\n``."""
    sink = ElasticsearchSink(es.url)

    async def go() -> tuple[int, object, float | None]:
        try:
            return await sink._post(b'{"create":{"_index":"x","_id":"1"}}\n{"a":1}')
        finally:
            await sink.close()
    status, reply, _ = asyncio.run(go())
    assert status == 400 and "must be terminated by a newline" in str(reply)
    es.violations.clear()


def test_down_server_means_retry() -> None:
    with ElasticsearchContract() as es:
        url = es.url
    result = send_once(ElasticsearchSink(url), [rec(WEB, 0)])
    assert result.kind == "retry" and "no answer" in result.reason


@pytest.mark.parametrize("pattern", ["Logs-%Y", "logs/%Y", "_logs-%Y", "logs-%Q"])
def test_bad_index_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(SinkError, match="invalid index name"):
        ElasticsearchSink("http://127.0.0.1:9200", index=pattern)


def test_document_and_template_agree_on_fields() -> None:
    doc = document(rec(WEB, 0, flags=PARTIAL))
    props = index_template()["template"]["mappings"]["properties"]

    def paths(d: dict[str, object], prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            if isinstance(v, dict) and k != "labels":
                out |= paths(v, f"{prefix}{k}.")
            else:
                out.add(prefix + k)
        return out

    def mapped(p: dict[str, object], prefix: str = "") -> set[str]:
        out = set()
        for k, v in p.items():
            assert isinstance(v, dict)
            if "properties" in v:
                out |= mapped(v["properties"], f"{prefix}{k}.")
            else:
                out.add(prefix + k)
        return out

    assert paths(doc) <= mapped(props)
    assert os.path.basename(doc["log"]["file"]["path"]) == "a-json.log"
