"""Drives the shipper end to end for tests and the benchmark: log writers in their own
processes (runtime's JsonFileWriter: real json-file bytes and Docker's rotation), the
shipper as a subprocess (``python -m shipper.cli``) that can be SIGKILLed, and a checker of
sequence-numbered lines at the sink.

A written line is ``<tag> <seq:08d> <padding>``; the checker reports, per tag, what is
missing and what arrived more than once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

PY = sys.executable
REPO = str(Path(__file__).resolve().parents[2])


def make_container(root: Path, cid: str, name: str, image: str = "busybox",
                   labels: dict[str, str] | None = None) -> Path:
    """A Docker-layout container dir with a config.v2.json; returns the live log path."""
    d = root / "containers" / cid
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"ID": cid, "Name": "/" + name, "Config": {"Image": image, "Labels": labels or {}},
           "LogPath": str(d / f"{cid}-json.log")}
    tmp = d / "config.v2.json.tmp"
    tmp.write_bytes(orjson.dumps(cfg))
    os.rename(tmp, d / "config.v2.json")
    return d / f"{cid}-json.log"


def line_text(tag: str, seq: int, size: int) -> bytes:
    head = f"{tag} {seq:08d} ".encode()
    return head + b"x" * max(size - len(head), 0)


@dataclass
class Check:
    """What arrived at the sink, per tag."""

    counts: dict[str, Counter[int]] = field(default_factory=dict)
    parse_errors: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    records: int = 0
    torn: int = 0

    def add(self, message: str, rec: dict | None = None) -> None:
        self.records += 1
        parts = message.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return
        self.counts.setdefault(parts[0], Counter())[int(parts[1])] += 1

    def missing(self, tag: str, n: int) -> list[int]:
        got = self.counts.get(tag, Counter())
        return [i for i in range(n) if got[i] == 0]

    def duplicates(self, tag: str | None = None) -> int:
        tags = [tag] if tag else list(self.counts)
        return sum(c - 1 for t in tags for c in self.counts.get(t, Counter()).values() if c > 1)


def read_ndjson(path: Path | str) -> tuple[Check, list[dict]]:
    """Parse the file sink's output; torn lines (a kill mid-write) are counted, not fatal."""
    check, recs = Check(), []
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return check, recs
    for raw in data.split(b"\n"):
        if not raw:
            continue
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            check.torn += 1
            continue
        recs.append(rec)
        for flag in ("partial", "truncated", "parse_error"):
            if rec.get(flag):
                check.flags[flag] += 1
        check.add(rec["message"], rec)
    return check, recs


def shipper_argv(root: Path, out: str, registry: Path, *extra: str) -> list[str]:
    return [PY, "-m", "shipper.cli", "--root", str(root), "--sink", f"file={out}",
            "--registry", str(registry), "--listen", "none", "--poll-interval", "0.02",
            "--rescan-interval", "0.5", "--host", "testhost", *extra]


def start_shipper(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as f:
        return subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


# --- the writer process ----------------------------------------------------------------------

def writer_argv(path: Path, tag: str, n: int, *, size: int = 100, max_size: int = -1,
                max_file: int = 1, compress: bool = False, rate: float = 0.0,
                copytruncate: int = 0, long_every: int = 0, long_size: int = 0,
                interleave: bool = False) -> list[str]:
    argv = [PY, "-m", "tests.support.shipper_harness", "write", str(path), tag, str(n),
            "--size", str(size), "--max-size", str(max_size), "--max-file", str(max_file),
            "--rate", str(rate), "--copytruncate", str(copytruncate),
            "--long-every", str(long_every), "--long-size", str(long_size)]
    if compress:
        argv.append("--compress")
    if interleave:
        argv.append("--interleave")
    return argv


def spawn_writers(argvs: Iterable[list[str]]) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(a, cwd=REPO, stdin=subprocess.DEVNULL) for a in argvs]


def _write(args: argparse.Namespace) -> None:
    sys.path.insert(0, REPO)
    from formats.jsonfile.writer import JsonFileWriter, stream_to_writer

    w = JsonFileWriter(args.path, max_size=args.max_size, max_file=args.max_file,
                       compress=args.compress)
    out = stream_to_writer(w, "stdout")
    err = stream_to_writer(w, "stderr")
    start = time.monotonic()
    for seq in range(args.n):
        long = args.long_every and seq % args.long_every == args.long_every - 1
        text = line_text(args.tag, seq, args.long_size if long else args.size) + b"\n"
        if args.interleave and long:
            # this line goes out in pieces on stderr while short stdout lines interleave
            half = len(text) // 2
            err.feed(text[:half])
            out.feed(line_text(args.tag + "o", seq, 60) + b"\n")
            err.feed(text[half:])
        else:
            (err if seq % 2 else out).feed(text)
        if args.copytruncate and seq % args.copytruncate == args.copytruncate - 1:
            w.close()
            shutil.copyfile(args.path, args.path + ".1")
            os.truncate(args.path, 0)
            w = JsonFileWriter(args.path, max_size=-1)
            out = stream_to_writer(w, "stdout")
            err = stream_to_writer(w, "stderr")
        if args.rate:
            ahead = (seq + 1) / args.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    out.flush()
    err.flush()
    w.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("path")
    w.add_argument("tag")
    w.add_argument("n", type=int)
    w.add_argument("--size", type=int, default=100)
    w.add_argument("--max-size", type=int, default=-1)
    w.add_argument("--max-file", type=int, default=1)
    w.add_argument("--compress", action="store_true")
    w.add_argument("--rate", type=float, default=0.0)
    w.add_argument("--copytruncate", type=int, default=0)
    w.add_argument("--long-every", type=int, default=0)
    w.add_argument("--long-size", type=int, default=0)
    w.add_argument("--interleave", action="store_true")
    args = p.parse_args(argv)
    if args.cmd == "write":
        _write(args)


if __name__ == "__main__":
    main()
