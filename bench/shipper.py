"""Shipper benchmark: prints one JSON object.

- ``lines_per_cpu_s``: 1M Docker json-file lines (~160 bytes) over 10 files, shipped by
  ``python -m shipper.cli`` to the file sink's wire format (NDJSON written to /dev/null);
  CPU seconds of the shipper process (from /proc/<pid>/stat) from the moment it is idle
  with the files appearing until the sink has acknowledged the last line (read from its
  own /metrics). ``disk_file_lines_per_cpu_s``: the same into a file on disk (the kernel's
  page-cache copy of ~340 bytes per line is charged to the shipper).
- ``influx_lines_per_cpu_s``: the same to a real ``influxd`` (v1 API), fewer lines.
- ``rsyslog_lines_per_cpu_s``: rsyslogd's ``imfile`` -> ``omfile`` over the same 10 files
  in the same run, its CPU from /proc too.
- ``p50_latency_ms`` / ``p99_latency_ms``: written -> delivered at 1k lines/s, the file
  sink writing to a pipe this script reads (a line counts as acknowledged when it
  arrives); the writer stamps each line with its write time (the json-file ``time``).
- ``rss_mb``: peak RSS of the shipper in the 1M-line run; ``rss_mb_200_files``: RSS with
  200 containers' logs tailed.

Usage: ``python bench/shipper.py [--lines 1000000] [--files 10] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from formats.jsonfile.writer import JsonFileWriter, encode_line  # noqa: E402
from tests.support.servers import free_port, influxd  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PY = sys.executable


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def write_files(staging: Path, files: int, lines: int) -> list[Path]:
    """``files`` container dirs with ``lines`` lines each between them (~160 bytes)."""
    dirs = []
    t0 = time.time_ns()
    per = lines // files
    for f in range(files):
        cid = f"{f:02d}" * 32
        d = staging / cid
        d.mkdir(parents=True)
        (d / "config.v2.json").write_text(json.dumps(
            {"ID": cid, "Name": f"/bench{f}", "Config": {"Image": "busybox", "Labels": {}}}))
        chunk = []
        with open(d / f"{cid}-json.log", "wb") as out:
            for i in range(per):
                msg = f"bench{f} seq={i:08d} GET /api/v1/items?page={i % 97} 200 " \
                      f"{i % 1000}ms ua=curl/8.0 trace=4bf92f3577b34da6\n".encode()
                chunk.append(encode_line("stdout" if i % 4 else "stderr", msg, t0 + i * 1000))
                if len(chunk) == 10000:
                    out.write(b"".join(chunk))
                    chunk = []
            out.write(b"".join(chunk))
        dirs.append(d)
    return dirs


def metric(url: str, name: str) -> float:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_shipper(work: Path, staging: Path, sink: str, lines: int, timeout: float = 600
                ) -> dict[str, float]:
    """Start the shipper on an empty root, move the files in, wait for every line."""
    root = work / "root"
    (root / "containers").mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([PY, "-m", "shipper.cli", "--root", str(root), "--sink", sink,
                             "--registry", str(work / "registry.json"),
                             "--listen", f"127.0.0.1:{port}", "--host", "bench"],
                            cwd=REPO, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while metric(url, "boxwatch_shipper_healthy") < 0:
            time.sleep(0.05)
        time.sleep(0.3)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for d in staging.iterdir():
            os.rename(d, root / "containers" / d.name)
        deadline = time.monotonic() + timeout
        while metric(url, "boxwatch_shipper_shipped_total") < lines:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"shipper did not ship {lines} lines ({sink})")
            time.sleep(0.25)  # each scrape costs the shipper CPU too: not too often
        cpu = cpu_seconds(proc.pid) - cpu0
        wall = time.monotonic() - t0
        return {"cpu_s": cpu, "wall_s": wall, "lines_per_cpu_s": lines / cpu,
                "rss_mb": peak_rss_mb(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_rsyslog(work: Path, staging: Path, lines: int, timeout: float = 600) -> dict[str, float]:
    """rsyslogd imfile (inotify) -> omfile over the same files."""
    root = work / "rsyslog-root"
    root.mkdir()
    (work / "rs-work").mkdir()
    out = work / "rsyslog-out.log"
    conf = work / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}/rs-work" maxMessageSize="64k")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\\n")
ruleset(name="logs") {{ action(type="omfile" file="{out}" template="raw") }}
input(type="imfile" file="{root}/*/*-json.log" tag="bench" ruleset="logs"
      freshStartTail="off" addMetadata="on")
""")
    pidfile = work / "rsyslogd.pid"
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(pidfile)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError("rsyslogd exited at start")
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        for d in staging.iterdir():
            shutil.copytree(d, root / d.name)
        deadline = time.monotonic() + timeout
        seen, pos = 0, 0
        while seen < lines:  # count the lines omfile has written so far
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"rsyslogd wrote {seen} of {lines} lines")
            time.sleep(0.05)
            if out.exists():
                with open(out, "rb") as f:
                    f.seek(pos)
                    data = f.read()
                pos += len(data)
                seen += data.count(b"\n")
        cpu = cpu_seconds(proc.pid) - cpu0
        return {"cpu_s": cpu, "wall_s": time.monotonic() - t0, "lines_per_cpu_s": lines / cpu}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def latency(work: Path, rate: int = 1000, seconds: float = 10.0) -> dict[str, float]:
    """Write ``rate`` lines/s to one container log; the shipper ships to its stdout."""
    root = work / "lat-root"
    cid = "ab" * 32
    d = root / "containers" / cid
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps({"ID": cid, "Name": "/lat", "Config": {}}))
    proc = subprocess.Popen([PY, "-m", "shipper.cli", "--root", str(root), "--sink", "file=-",
                             "--registry", str(work / "lat-registry.json"), "--listen", "none",
                             "--host", "bench"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    lat: list[float] = []
    try:
        time.sleep(1.0)
        w = JsonFileWriter(str(d / f"{cid}-json.log"), max_size=2_000_000, max_file=3)
        n = int(rate * seconds)
        start = time.monotonic()
        buf = b""
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        i = 0
        while len(lat) < n:
            now = time.monotonic()
            due = min(n, int((now - start) * rate) + 1)
            while i < due:
                w.write_line("stdout", f"lat {i:08d} some payload here\n".encode(), time.time_ns())
                i += 1
            r, _, _ = select.select([fd], [], [], 0.001)
            if r:
                chunk = os.read(fd, 1 << 20)
                arrived = time.time_ns()
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    lat.append((arrived - json.loads(raw)["time_ns"]) / 1e6)
            if now - start > seconds + 30:
                raise RuntimeError(f"latency run: only {len(lat)} of {n} lines arrived")
        w.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lat.sort()
    return {"p50_latency_ms": lat[len(lat) // 2], "p99_latency_ms": lat[int(len(lat) * 0.99)],
            "max_latency_ms": lat[-1]}


def rss_many(work: Path, files: int = 200) -> float:
    """RSS of a shipper tailing ``files`` containers' logs (1,000 lines each)."""
    staging = work / "many-staging"
    write_files(staging, files, files * 1000)
    root = work / "many-root"
    (root / "containers").mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([PY, "-m", "shipper.cli", "--root", str(root), "--sink",
                             f"file={work}/many.ndjson", "--registry", str(work / "many.json"),
                             "--listen", f"127.0.0.1:{port}", "--host", "bench"],
                            cwd=REPO, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while metric(url, "boxwatch_shipper_healthy") < 0:
            time.sleep(0.05)
        for d in staging.iterdir():
            os.rename(d, root / "containers" / d.name)
        while metric(url, "boxwatch_shipper_shipped_total") < files * 1000:
            time.sleep(0.1)
        time.sleep(1.0)
        assert metric(url, "boxwatch_shipper_open_files") == files
        return rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--influx-lines", type=int, default=200_000)
    p.add_argument("--quick", action="store_true", help="skip influxd, rsyslog, 200 files")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="box-bench-shipper-"))
    result: dict[str, object] = {"lines": args.lines, "files": args.files}
    try:
        staging = work / "staging"
        write_files(staging, args.files, args.lines)
        line_bytes = sum(f.stat().st_size for f in staging.glob("*/*-json.log")) / args.lines
        result["line_bytes"] = round(line_bytes, 1)
        if not args.quick:
            rs = run_rsyslog(work, staging, args.lines)
            result["rsyslog_lines_per_cpu_s"] = round(rs["lines_per_cpu_s"])
            result["rsyslog_cpu_s"] = round(rs["cpu_s"], 2)
        # the file sink's wire format (NDJSON produced and written to /dev/null: what a
        # pipe reader gets), then the same into a file on disk (adds the page cache copy)
        kept = work / "staging-disk"
        shutil.copytree(staging, kept)
        fs = run_shipper(work / "file", staging, "file=/dev/null", args.lines)
        result.update(lines_per_cpu_s=round(fs["lines_per_cpu_s"]), cpu_s=round(fs["cpu_s"], 2),
                      wall_s=round(fs["wall_s"], 2), rss_mb=round(fs["rss_mb"], 1))
        ds = run_shipper(work / "disk", kept, f"file={work}/out.ndjson", args.lines)
        result["disk_file_lines_per_cpu_s"] = round(ds["lines_per_cpu_s"])
        os.unlink(work / "out.ndjson")
        if not args.quick:
            istaging = work / "istaging"
            write_files(istaging, args.files, args.influx_lines)
            with influxd() as server:
                ins = run_shipper(work / "influx", istaging, f"influxdb={server.url}",
                                  args.influx_lines)
            result["influx_lines"] = args.influx_lines
            result["influx_lines_per_cpu_s"] = round(ins["lines_per_cpu_s"])
            result["rss_mb_200_files"] = round(rss_many(work), 1)
        result.update({k: round(v, 1) for k, v in latency(work).items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
