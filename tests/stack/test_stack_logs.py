"""``boxwatch logs`` against what a real shipper wrote: a real ``influxd``, and the Loki
and Elasticsearch query paths against their contract servers. The same assertions run
over the three stores; then the printed format, ``-f`` and the error paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxwatch.logs.cli import Printer
from boxwatch.logs.elasticsearch import ElasticsearchLogs
from boxwatch.logs.influx import InfluxLogs, statement
from boxwatch.logs.loki import LokiLogs, logql
from boxwatch.logs.query import (
    LogEntry,
    LogQuery,
    LogStoreError,
    Match,
    QueryError,
    parse_time,
    rfc3339,
)
from tests.support.contract_elasticsearch_query import ElasticsearchQueryContract
from tests.support.contract_loki_query import LokiQueryContract
from tests.support.servers import influxd

NOW = time.time_ns()
T0 = NOW - 600 * 10**9  # ten minutes ago: inside --since 1h and Loki's accepted window
ODD = 'path "a/b" \\ done'  # quotes, a slash (InfluxQL regex delimiter), a backslash
# root -> host, containers -> [(stream, message)]; entry i of the whole set is at T0 + i ms
LOGS = {
    "a": ("node-a", {
        "web": [("stdout", "GET /index 200"), ("stderr", "warn slow"), ("stdout", "GET /a 200"),
                ("stderr", "warn slower"), ("stdout", "GET /b 404")],
        "worker-1": [("stdout", f"job {i} done") for i in range(1, 6)] + [("stdout", ODD)],
    }),
    "b": ("node-b", {"worker-2": [("stderr", "error: job failed")]}),
}
TOTAL = 12


def _json_line(stream: str, message: str, ns: int) -> bytes:
    return (
        json.dumps({"log": message + "\n", "stream": stream, "time": rfc3339(ns)}).encode() + b"\n"
    )


def write_container(root: Path, name: str, lines: list[tuple[str, str, int]]) -> Path:
    """A Docker-layout container dir (config.v2.json, <id>-json.log); returns the log."""
    cid = (name.encode().hex() * 64)[:64]
    d = root / "containers" / cid
    d.mkdir(parents=True, exist_ok=True)
    log = d / f"{cid}-json.log"
    (d / "config.v2.json").write_text(json.dumps({
        "ID": cid, "Name": f"/{name}", "Created": rfc3339(T0), "Image": "sha256:" + "0" * 64,
        "Config": {"Image": "busybox", "Labels": {}}, "LogPath": str(log),
        "State": {"Running": True}}))
    with open(log, "ab") as f:
        for stream, message, ns in lines:
            f.write(_json_line(stream, message, ns))
    return log


def expected() -> list[LogEntry]:
    out, i = [], 0
    for _, (host, containers) in LOGS.items():
        for name, lines in containers.items():
            for stream, message in lines:
                out.append(LogEntry(T0 + i * 10**6, name, host, stream, message))
                i += 1
    return sorted(out)


def make_roots(base: Path) -> dict[str, Path]:
    roots, i = {}, 0
    for key, (_, containers) in LOGS.items():
        roots[key] = base / f"root-{key}"
        for name, lines in containers.items():
            stamped = [(s, m, T0 + (i + n) * 10**6) for n, (s, m) in enumerate(lines)]
            i += len(lines)
            write_container(roots[key], name, stamped)
    return roots


def ship(roots: dict[str, Path], sink: list[str], work: Path) -> list[subprocess.Popen[bytes]]:
    """One real shipper per root (its own --host), as `boxwatch shipper`."""
    procs = []
    for key, root in roots.items():
        log = open(work / f"shipper-{key}.log", "ab")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "boxwatch.cli", "shipper", "--root", str(root), *sink,
             "--host", LOGS[key][0], "--registry", str(work / f"registry-{key}.json"),
             "--listen", "none", "--rescan-interval", "0.5"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True))
        log.close()
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def wait_all(store: object, n: int, timeout: float = 20.0) -> list[LogEntry]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = store.search(LogQuery(since_ns=T0 - 10**9, limit=0))
        except LogStoreError:  # "database not found" until the shipper's first write
            got = []
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture(scope="module", params=["influxdb", "loki", "elasticsearch"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    work = tmp_path_factory.mktemp(f"logs-{request.param}")
    roots = make_roots(work)
    if request.param == "influxdb":
        with influxd() as server:
            procs = ship(
                roots, ["--sink", f"influxdb-v1={server.url}", "--influx-db", "logs"], work
            )
            try:
                s = InfluxLogs(server.url, "logs")
                assert len(wait_all(s, TOTAL)) == TOTAL, (work / "shipper-a.log").read_text()
                yield s
            finally:
                stop(procs)
    elif request.param == "loki":
        with LokiQueryContract() as loki:
            procs = ship(roots, ["--sink", f"loki={loki.url}"], work)
            try:
                s = LokiLogs(loki.url)
                assert len(wait_all(s, TOTAL)) == TOTAL
                assert loki.violations == []
                yield s
            finally:
                stop(procs)
    else:
        with ElasticsearchQueryContract() as es:
            procs = ship(roots, ["--sink", f"elasticsearch={es.url}"], work)
            try:
                s = ElasticsearchLogs(es.url)
                assert len(wait_all(s, TOTAL)) == TOTAL
                assert es.violations == []
                yield s
            finally:
                stop(procs)


def search(store: object, **kw: object) -> list[LogEntry]:
    kw.setdefault("since_ns", T0 - 10**9)
    return store.search(LogQuery(**kw))


def test_everything_comes_back_in_time_order(store: object) -> None:
    assert search(store, limit=1000) == expected()


def test_container_exact_and_regex(store: object) -> None:
    assert [e.message for e in search(store, container=Match.parse("web", "c"))] == \
        [e.message for e in expected() if e.container == "web"]
    got = search(store, container=Match.parse("worker-.*", "c"))
    assert {e.container for e in got} == {"worker-1", "worker-2"} and len(got) == 7
    assert search(store, container=Match.parse("work", "c")) == []  # exact, not a prefix


def test_stream_host_and_grep(store: object) -> None:
    assert [e.message for e in search(store, stream="stderr")] == \
        ["warn slow", "warn slower", "error: job failed"]
    assert [e.container for e in search(store, host=Match.parse("node-b", "h"))] == ["worker-2"]
    assert [e.message for e in search(store, grep="job [0-9] done")] == \
        [f"job {i} done" for i in range(1, 6)]
    assert [e.message for e in search(store, grep="a/b")] == [ODD]
    assert [e.message for e in search(store, grep='"a/b" \\\\')] == [ODD]


def test_limit_is_the_newest_and_times_bound(store: object) -> None:
    all_entries = expected()
    assert search(store, limit=2) == all_entries[-2:]
    until = all_entries[2].time_ns
    assert search(store, until_ns=until) == all_entries[:3]
    assert search(store, since_ns=all_entries[-3].time_ns) == all_entries[-3:]
    assert search(store, since_ns=NOW + 60 * 10**9) == []


# -- without servers ---------------------------------------------------------------------


def test_queries_escape_what_each_language_needs() -> None:
    q = LogQuery(container=Match.parse("web|api", "c"), host=Match.parse("n1", "h"),
                 stream="stdout", grep="a/b'c", limit=5)
    text = statement(q)
    assert "\"container_name\" =~ /^(?:web|api)$/" in text and "\"host\" = 'n1'" in text
    assert "\"message\" =~ /a\\/b'c/" in text and text.endswith("ORDER BY time DESC LIMIT 5")
    assert logql(LogQuery(grep='say "hi"')) == '{container_name=~".+"} |~ "say \\"hi\\""'
    assert logql(LogQuery(container=Match.parse("web", "c"))) == '{container_name="web"}'


def test_times_and_names_parse_or_fail_with_the_value() -> None:
    now = 1_700_000_000 * 10**9
    assert parse_time("90s", now) == now - 90 * 10**9
    assert parse_time("2d", now) == now - 2 * 86400 * 10**9
    assert parse_time("2023-11-14T22:13:20.5Z") == 1_700_000_000_500_000_000
    assert parse_time("2023-11-14T22:13:20") == 1_700_000_000 * 10**9  # no zone: UTC
    assert parse_time("1700000000") == 1_700_000_000 * 10**9
    with pytest.raises(QueryError, match="'yesterday-ish'"):
        parse_time("yesterday-ish")
    with pytest.raises(QueryError, match=r"'web\('"):
        Match.parse("web(", "--container")
    assert Match.parse("web.1", "c").regex is False and Match.parse("w.*", "c").regex is True


def test_printer_is_docker_logs_t_with_the_name_in_front() -> None:
    import io

    out = io.StringIO()
    p = Printer(out, colour=False)
    p.print([LogEntry(1_700_000_000_000_000_001, "web", "n1", "stdout", "hello"),
             LogEntry(1_700_000_000_100_000_000, "worker-1", "n1", "stderr", "oops")])
    assert out.getvalue().splitlines() == [
        "web      | 2023-11-14T22:13:20.000000001Z hello",
        "worker-1 | 2023-11-14T22:13:20.100000000Z oops"]
    p.print([LogEntry(1_700_000_001_000_000_000, "web", "n2", "stdout", "x")])
    assert out.getvalue().splitlines()[-1].startswith("n2/web ")  # two hosts seen now
    coloured = io.StringIO()
    Printer(coloured, colour=True).print([LogEntry(0, "web", "h", "stdout", "x")])
    assert coloured.getvalue().startswith("\033[") and "\033[0m | " in coloured.getvalue()


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    env = {**os.environ, "BOXWATCH_LOGS_URL": f"http://127.0.0.1:{free_port()}"}
    proc = subprocess.run([sys.executable, "-m", "boxwatch.cli", "logs", "--container", "web"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "cannot reach http://127.0.0.1:" in proc.stderr
    with LokiQueryContract() as loki, pytest.raises(LogStoreError, match="HTTP 400: .*empty"):
        LokiLogs(loki.url)._page('{a=~".*"}', 0, 1, 10)  # Loki refuses such a selector


def test_cli_prints_and_follows_against_influxd(tmp_path: Path) -> None:
    """The command a user types: a real shipper into a real influxd, then `boxwatch logs`
    and `boxwatch logs -f` picking up a line written after it started."""
    roots = {"a": make_roots(tmp_path)["a"]}
    with influxd() as server:
        procs = ship(roots, ["--sink", f"influxdb-v1={server.url}", "--influx-db", "logs"],
                     tmp_path)
        follower = None
        try:
            assert len(wait_all(InfluxLogs(server.url, "logs"), 11)) == 11
            env = {**os.environ, "BOXWATCH_LOGS_URL": server.url, "BOXWATCH_CONFIG": ""}
            argv = [sys.executable, "-m", "boxwatch.cli", "logs", "--container", "web",
                    "--since", "1h"]
            proc = subprocess.run([*argv, "--stream", "stderr"], capture_output=True,
                                  text=True, env=env, cwd=tmp_path, timeout=30)
            assert proc.returncode == 0, proc.stderr
            lines = proc.stdout.splitlines()
            assert [line.split(" ", 3)[3] for line in lines] == ["warn slow", "warn slower"]
            assert all(line.startswith("web | ") and line.split(" ")[2].endswith("Z")
                       for line in lines)
            follower = subprocess.Popen([*argv, "-f", "--interval", "0.2"], env=env, cwd=tmp_path,
                                        stdout=subprocess.PIPE, text=True,
                                        start_new_session=True)
            assert follower.stdout is not None
            first = [follower.stdout.readline() for _ in range(5)]
            assert first[-1].rstrip().endswith("GET /b 404")
            web_log = [
                p
                for p in (roots["a"] / "containers").glob("*/*-json.log")
                if json.loads((p.parent / "config.v2.json").read_text())["Name"] == "/web"
            ][0]
            with open(web_log, "ab") as f:
                f.write(_json_line("stdout", "GET /late 200", time.time_ns()))
            started = time.monotonic()
            line = follower.stdout.readline()
            assert line.rstrip().endswith("GET /late 200") and time.monotonic() - started < 5
        finally:
            if follower is not None:
                os.killpg(follower.pid, signal.SIGTERM)
                follower.wait(10)
            stop(procs)
