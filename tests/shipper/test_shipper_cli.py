"""``boxwatch shipper`` as a process: flags, /metrics and /healthz, bad input end to end,
the file sink on stdout, and a real box container logging while the shipper runs."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from shipper.cli import main
from tests.conftest import Box
from tests.support.servers import free_port
from tests.support.shipper_harness import (
    PY,
    REPO,
    make_container,
    read_ndjson,
    shipper_argv,
    start_shipper,
    stop,
)
from tests.support.wait import poll as wait_for

GOOD = b'{"log":"fine\\n","stream":"stdout","time":"2024-05-01T10:11:12.1Z"}\n'
BAD = [
    b"not json",
    b"\x00\x00\x00\x00" + GOOD[:-1],
    b'{"log":"\xff\\n","stream":"stdout","time":"2024-05-01T10:11:12Z"}',
    b'{"log":"x\\n","stream":"stdin","time":"2024-05-01T10:11:12Z"}',
]


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_healthz_and_bad_input_counted(tmp_path: Path):
    root = tmp_path / "root"
    log = make_container(root, "a" * 64, "web", labels={"app": "shop", "other": "x"})
    log.write_bytes(GOOD + b"\n".join(BAD) + b"\n" + GOOD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "out.ndjson"
    argv = shipper_argv(root, str(out), tmp_path / "reg.json", "--label-whitelist", "app")
    argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
    sh = start_shipper(argv, tmp_path / "shipper.log")
    try:
        assert wait_for(lambda: read_ndjson(out)[0].records == 6, 15)
        assert wait_for(
            lambda: scrape(url).get('boxwatch_shipper_shipped_total{sink="file"}') == 6, 5
        )
        m = scrape(url)
        assert m["boxwatch_shipper_lines_read_total"] == 6
        assert m["boxwatch_shipper_parse_errors_total"] == 4
        assert m["boxwatch_shipper_bytes_read_total"] == log.stat().st_size
        assert m["boxwatch_shipper_open_files"] == 1
        assert m[f'boxwatch_shipper_lag_bytes{{path="{log}"}}'] == 0
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    finally:
        assert stop(sh) == 0
    _, recs = read_ndjson(out)
    assert [r["message"] for r in recs if not r.get("parse_error")] == ["fine", "fine"]
    bad = [r for r in recs if r.get("parse_error")]
    assert [r["message"] for r in bad] == [
        "not json",
        BAD[1].decode(),
        BAD[2].decode("utf-8", "replace"),
        BAD[3].decode(),
    ]
    assert all(r["labels"] == {"app": "shop"} and r["container_name"] == "web" for r in recs)


def test_file_sink_on_stdout_and_usage_errors(tmp_path: Path):
    root = tmp_path / "root"
    make_container(root, "b" * 64, "api").write_bytes(GOOD)
    proc = subprocess.Popen([PY, "-m", "shipper.cli", "--root", str(root), "--sink", "file=-",
                             "--registry", str(tmp_path / "r.json"), "--listen", "none"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = json.loads(proc.stdout.readline())
        assert (line["message"], line["container_name"], line["stream"]) == (
            "fine",
            "api",
            "stdout",
        )
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
        proc.stdout.close()
        proc.stderr.close()
    assert main(["--root", str(root), "--registry", str(tmp_path / "r.json")]) == 2
    assert main(["--sink", "nosuch=x", "--registry", str(tmp_path / "r.json")]) == 2
    assert main(["--sink", "file=-", "--multiline-start", "(", "--registry",
                 str(tmp_path / "r.json")]) == 2


def test_a_real_box_container_logging_while_the_shipper_runs(box: Box, tmp_path: Path):
    out = tmp_path / "out.ndjson"
    sh = start_shipper(shipper_argv(box.root, str(out), tmp_path / "reg.json"),
                       tmp_path / "shipper.log")
    try:
        time.sleep(0.5)
        cid = box.ok("run", "-d", "--name", "shiptest", "busybox", "sh", "-c",
                     "i=0; while [ $i -lt 300 ]; do echo \"boxline $i\"; i=$((i+1)); "
                     "done; echo oops >&2; sleep 0.3; echo done").strip()
        assert wait_for(lambda: any(r.get("message") == "done" for r in read_ndjson(out)[1]), 30), \
            (tmp_path / "shipper.log").read_text()[-2000:]
        box.ok("rm", "-f", cid)
    finally:
        assert stop(sh) == 0
    _, recs = read_ndjson(out)
    mine = [r for r in recs if r["container_id"] == cid]
    assert [r["message"] for r in mine if r["stream"] == "stdout"] == \
        [f"boxline {i}" for i in range(300)] + ["done"]
    assert [r["message"] for r in mine if r["stream"] == "stderr"] == ["oops"]
    assert {(r["container_name"], r["image"]) for r in mine} == {("shiptest", "busybox")}


def test_cri_files_from_a_path_glob_with_multiline(tmp_path: Path):
    pod = tmp_path / "pods" / "default_shop-1_uid" / "app"
    pod.mkdir(parents=True)
    (pod / "0.log").write_bytes(
        b"2024-05-01T10:11:12.1Z stdout F Traceback (most recent call last):\n"
        b"2024-05-01T10:11:12.2Z stdout P   File \"x\", li\n"
        b"2024-05-01T10:11:12.3Z stdout F ne 1\n"
        b"2024-05-01T10:11:12.4Z stderr F warning\n"
        b"2024-05-01T10:11:12.5Z stdout F Next event\n")
    out = tmp_path / "out.ndjson"
    argv = shipper_argv(tmp_path / "nobox", str(out), tmp_path / "reg.json", "--path",
                        str(tmp_path / "pods" / "*" / "*" / "*.log"), "--multiline-start",
                        r"^\S")
    sh = start_shipper(argv, tmp_path / "shipper.log")
    try:
        assert wait_for(lambda: read_ndjson(out)[0].records >= 2, 15)
    finally:
        assert stop(sh) == 0  # an event still open on stop is re-read at the next start
    _, recs = read_ndjson(out)
    assert recs[0]["message"] == 'Traceback (most recent call last):\n  File "x", line 1'
    assert recs[0]["container_name"] == "app" and recs[0]["labels"] == {
        "namespace": "default", "pod": "shop-1"}
    assert {r["message"] for r in recs[1:]} <= {"warning", "Next event"}
