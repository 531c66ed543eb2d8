"""The Loki sink against a contract server that follows Loki's documented push behaviour
(tests/support/contract_loki.py) and checks every request body against the format."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import os
import random
import time
from collections.abc import Iterator

import orjson
import pytest

from shipper.sinks.base import PARSE_ERROR, Origin, Record, Result, SinkError
from shipper.sinks.loki import LokiSink, add_arguments, sanitize_label_name, stream_labels
from tests.support.contract_loki import LokiContract, LokiLimits

NOW = time.time_ns()
WEB = Origin("a" * 64, "web", "nginx:1.25", {"com.docker.compose.service": "web",
                                             "9lives": "yes", "tier": ""},
             host="node1", path="/var/lib/box/containers/a/a-json.log", dev=2049, ino=77,
             fingerprint="f" * 40)
DB = Origin("b" * 64, "db", "postgres:16", {}, host="node1", dev=2049, ino=78,
            fingerprint="e" * 40)


def rec(origin: Origin, i: int, *, stream: str = "stdout", ts: int | None = None,
        message: str | None = None, flags: int = 0) -> Record:
    return Record(NOW + i * 1000 if ts is None else ts, message or f"line {i}", stream,
                  100 * (i + 1), flags, origin)


async def deliver(sink: LokiSink, batch: list[Record], attempts: int = 10,
                  cap: float = 0.05) -> tuple[list[Result], list[Record]]:
    """What the pipeline does with a batch: resend what the result says to retry, with
    backoff (the server's Retry-After, capped here to keep tests fast); collect rejects."""
    results: list[Result] = []
    rejected: list[Record] = []
    pending = list(batch)
    delay = 0.01
    for _ in range(attempts):
        result = await sink.send(pending)
        results.append(result)
        if result.kind == "ok":
            return results, rejected
        if result.kind == "fail":
            return results, rejected + pending
        if result.kind == "partial":
            rejected += [r for r, a, t in zip(pending, result.acked, result.retry_mask,
                                              strict=True) if not a and not t]
            pending = [r for r, t in zip(pending, result.retry_mask, strict=True) if t]
            if not pending:
                return results, rejected
        await asyncio.sleep(min(result.after if result.after is not None else delay, cap))
        delay *= 2
    raise AssertionError(f"not delivered after {attempts} attempts: {results[-1]}")


def run(sink: LokiSink, batch: list[Record], **kw: float) -> tuple[list[Result], list[Record]]:
    async def go() -> tuple[list[Result], list[Record]]:
        try:
            return await deliver(sink, batch, **kw)
        finally:
            await sink.close()
    return asyncio.run(go())


@pytest.fixture
def loki() -> Iterator[LokiContract]:
    with LokiContract() as server:
        yield server
        assert server.violations == []


def test_streams_labels_metadata_and_gzip(loki: LokiContract) -> None:
    batch = [rec(WEB, 3), rec(DB, 1), rec(WEB, 1), rec(WEB, 2, stream="stderr"), rec(WEB, 2),
             rec(DB, 0, flags=PARSE_ERROR, message="not json")]
    results, rejected = run(LokiSink(loki.url), batch)
    assert [r.kind for r in results] == ["ok"] and rejected == []
    assert loki.stream_labels() == [
        '{_9lives="yes", com_docker_compose_service="web", container_name="web", '
        'host="node1", stream="stderr"}',
        '{_9lives="yes", com_docker_compose_service="web", container_name="web", '
        'host="node1", stream="stdout"}',
        '{container_name="db", host="node1", stream="stdout"}']
    web = loki.entries(container_name="web", stream="stdout")
    assert [(e.ts, e.line) for e in web] == [(NOW + 1000, "line 1"), (NOW + 2000, "line 2"),
                                           (NOW + 3000, "line 3")]
    assert web[0].metadata == {"container_id": "a" * 64, "image": "nginx:1.25"}
    db = loki.entries(container_name="db")
    assert db[0].metadata == {"container_id": "b" * 64, "image": "postgres:16",
                              "parse_error": "true"}
    (req,) = loki.requests
    assert req.headers["Content-Encoding"] == "gzip"
    assert req.headers["Content-Type"] == "application/json"
    assert "X-Scope-OrgID" not in req.headers and "Authorization" not in req.headers
    assert req.status == 204
    values = [v for s in req.body["streams"] for v in s["values"]]
    assert all(isinstance(v[0], str) and int(v[0]) >= NOW for v in values)


def test_entries_are_sorted_per_stream_for_an_ordered_loki() -> None:
    """With ordered writes (Loki < 2.4, or unordered_writes: false) an entry older than the
    newest of its stream is refused: the sink must sort a shuffled batch."""
    batch = [rec(WEB, i) for i in range(200)]
    random.Random(4).shuffle(batch)
    with LokiContract(LokiLimits(unordered_writes=False)) as loki:
        results, rejected = run(LokiSink(loki.url), batch)
        assert results == [Result.ok()] and rejected == []
        assert [e.line for e in loki.entries()] == [f"line {i}" for i in range(200)]
        assert loki.violations == []


def test_the_contract_server_refuses_unsorted_entries() -> None:
    """The check above can fail: a push in the wrong order is refused by this Loki."""
    with LokiContract(LokiLimits(unordered_writes=False), require_sorted=False) as loki:
        body = {"streams": [{"stream": {"a": "b"}, "values": [[str(NOW + 5), "new"],
                                                               [str(NOW), "old"]]}]}
        sink = LokiSink(loki.url)
        status, text, _ = asyncio.run(_post_raw(sink, gzip.compress(orjson.dumps(body))))
        assert status == 400 and "entry out of order" in text
        assert [e.line for e in loki.entries()] == ["new"]


async def _post_raw(sink: LokiSink, body: bytes) -> tuple[int, str, float | None]:
    try:
        return await sink._post(body)
    finally:
        await sink.close()


def test_too_old_is_rejected_counted_and_logged_once(loki: LokiContract,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    old = NOW - 8 * 24 * 3600 * 10**9  # past reject_old_samples_max_age (168h)
    batch = [rec(WEB, i, ts=old + i) for i in range(5)]
    sink = LokiSink(loki.url)
    with caplog.at_level(logging.WARNING, logger="shipper.sinks.loki"):
        results, rejected = run(sink, batch)
    assert [r.kind for r in results] == ["fail"] and rejected == batch
    assert "has timestamp too old" in results[0].reason
    assert len(loki.requests) == 1 and loki.requests[0].status == 400  # not retried
    assert sink.health()["rejected_records"] == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "entry for stream '{_9lives=\"yes\"" in warnings[0].getMessage()
    assert loki.entries() == []


def test_429_honours_retry_after_then_delivers(loki: LokiContract) -> None:
    loki.fail_next(429, 2, retry_after="1")
    batch = [rec(WEB, i) for i in range(10)]
    sink = LokiSink(loki.url)
    results, rejected = run(sink, batch)
    assert [r.kind for r in results] == ["retry", "retry", "ok"] and rejected == []
    assert results[0].after == 1.0 and "Ingestion rate limit exceeded" in results[0].reason
    assert [e.line for e in loki.entries()] == [f"line {i}" for i in range(10)]
    assert sink.health()["retried_requests"] == 2 and sink.health()["rejected_records"] == 0


def test_503_is_retried_with_the_pipelines_backoff(loki: LokiContract) -> None:
    loki.fail_next(503, 3)
    results, _ = run(LokiSink(loki.url), [rec(DB, i) for i in range(3)])
    assert [(r.kind, r.after) for r in results] == [("retry", None)] * 3 + [("ok", None)]
    assert len(loki.entries(container_name="db")) == 3


def test_a_real_rate_limit_answers_429_and_stores_nothing() -> None:
    limits = LokiLimits(ingestion_rate_bytes=1000, ingestion_burst_bytes=2000)
    with LokiContract(limits) as loki:
        batch = [rec(WEB, i, message="x" * 500) for i in range(6)]
        result = asyncio.run(_send_once(LokiSink(loki.url), batch))
        assert result.kind == "retry" and "Ingestion rate limit exceeded for user fake" in \
            result.reason
        assert loki.entries() == []


async def _send_once(sink: LokiSink, batch: list[Record]) -> Result:
    try:
        return await sink.send(batch)
    finally:
        await sink.close()


def test_tenant_header_and_multi_tenant_loki() -> None:
    with LokiContract(auth_enabled=True) as loki:
        no_tenant = asyncio.run(_send_once(LokiSink(loki.url), [rec(WEB, 0)]))
        assert no_tenant.kind == "retry" and "no org id" in no_tenant.reason  # never dropped
        results, _ = run(LokiSink(loki.url + "/", tenant="team-a"), [rec(WEB, 1)])
        assert results == [Result.ok()]
        assert loki.requests[-1].headers["X-Scope-OrgID"] == "team-a"
        assert [e.line for e in loki.entries("team-a")] == ["line 1"]
        assert loki.entries("fake") == []


def test_credentials_are_sent_and_never_logged(tmp_path: os.PathLike[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    with LokiContract(expect_authorization="Bearer s3cret-token") as loki:
        token = os.path.join(tmp_path, "token")
        with open(token, "w") as f:
            f.write("s3cret-token\n")
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        args = parser.parse_args(["--loki-bearer-token-file", token, "--loki-tenant", "t1"])
        loki.fail_next(503)
        with caplog.at_level(logging.DEBUG):
            sink = LokiSink.from_args(loki.url, args)
            results, _ = run(sink, [rec(WEB, 0)])
        assert [r.kind for r in results] == ["retry", "ok"]
        assert loki.requests[-1].headers["Authorization"] == "Bearer s3cret-token"
        assert "s3cret" not in caplog.text and "s3cret" not in repr(sink)

        url = loki.url.replace("http://", "http://alice:pa%3Ass@")
        basic = LokiSink(url)
        assert "pa" not in repr(basic) and "alice" not in repr(basic)
        result = asyncio.run(_send_once(basic, [rec(WEB, 1)]))
        assert result.kind == "retry"  # 401: wrong credentials are not the data's fault
        assert loki.requests[-1].headers["Authorization"] == "Basic YWxpY2U6cGE6c3M="


def test_batches_are_split_below_one_mib_compressed(loki: LokiContract) -> None:
    rnd = random.Random(1)
    batch = [rec(WEB if i % 2 else DB, i, message=rnd.randbytes(60_000).hex())
             for i in range(60)]  # 7 MiB of hex, ~3.6 MiB gzipped
    sink = LokiSink(loki.url)
    results, _ = run(sink, batch)
    assert results == [Result.ok()]
    sizes = [r.compressed_bytes for r in loki.requests]
    assert sum(sizes) > 3 * 1024 * 1024 and len(sizes) <= 2 * (sum(sizes) // 2**20 + 1)
    assert max(sizes) <= 1024 * 1024
    assert len(loki.entries()) == 60 and sink.health()["sent_records"] == 60


def test_a_split_batch_acks_what_went_through(loki: LokiContract) -> None:
    rnd = random.Random(2)
    batch = [rec(WEB, i, message=rnd.randbytes(100_000).hex()) for i in range(30)]
    loki.fail_next(503, 1, skip=1)
    sink = LokiSink(loki.url)
    first = asyncio.run(_send_once(sink, batch))
    assert first.kind == "partial"
    sent = sum(first.acked)
    assert 0 < sent < 30 and first.acked == (True,) * sent + (False,) * (30 - sent)
    assert first.retry_mask == (False,) * sent + (True,) * (30 - sent)  # the rest waits
    assert len(loki.requests) == 2  # nothing after the failed request was sent
    results, _ = run(LokiSink(loki.url), [r for r, t in zip(batch, first.retry_mask,
                                                             strict=True) if t])
    assert results == [Result.ok()]
    assert [e.line for e in loki.entries()] == [r.message for r in batch]


def test_overlong_lines_are_cut_to_lokis_limit(loki: LokiContract) -> None:
    batch = [rec(WEB, 0, message="é" * 200_000), rec(WEB, 1)]
    results, _ = run(LokiSink(loki.url), batch)
    assert results == [Result.ok()]
    long, short = loki.entries()
    assert len(long.line.encode()) == 256_000 and long.metadata["truncated"] == "true"
    assert short.line == "line 1" and "truncated" not in short.metadata


def test_without_the_cut_loki_refuses_the_line_and_keeps_the_rest(loki: LokiContract) -> None:
    batch = [rec(WEB, 0, message="x" * 300_000), rec(WEB, 1)]
    result = asyncio.run(_send_once(LokiSink(loki.url, max_line_bytes=0), batch))
    assert result.kind == "fail" and "Max entry size '256000' bytes exceeded" in result.reason
    assert [e.line for e in loki.entries()] == ["line 1"]  # Loki keeps the valid rest


def test_a_resent_batch_is_not_duplicated(loki: LokiContract) -> None:
    batch = [rec(WEB, i) for i in range(5)]
    for _ in range(2):
        assert run(LokiSink(loki.url), batch)[0] == [Result.ok()]
    assert len(loki.entries()) == 5


def test_down_server_means_retry_not_an_exception() -> None:
    with LokiContract() as loki:
        url = loki.url
    result = asyncio.run(_send_once(LokiSink(url), [rec(WEB, 0)]))
    assert result.kind == "retry" and "no answer from Loki" in result.reason


@pytest.mark.parametrize("name, clean", [
    ("com.docker.compose.service", "com_docker_compose_service"), ("9lives", "_9lives"),
    ("__name__", "_name__"), ("app-name", "app_name"), ("ok_Name1", "ok_Name1"), ("", "_"),
    ("ünïcode", "_n_code"),
])
def test_label_names_are_sanitised(name: str, clean: str) -> None:
    assert sanitize_label_name(name) == clean


def test_fixed_labels_win_and_the_count_is_capped() -> None:
    labels = {"host": "evil", "stream": "x"} | {f"l{i:02d}": "v" for i in range(20)}
    got = stream_labels(Origin("id", "web", "img", labels, host="node1"), "stdout")
    assert got["host"] == "node1" and got["stream"] == "stdout"
    assert len(got) == 15


def test_bad_urls_are_refused() -> None:
    with pytest.raises(SinkError, match="URL must be http"):
        LokiSink("ftp://loki:3100")
    with pytest.raises(SinkError, match="not both"):
        LokiSink("http://u:p@loki:3100", bearer_token="t")
