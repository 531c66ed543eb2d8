"""Round-trip latency of one byte through ``box attach``: the client's stdin -> the
attach socket -> the monitor -> the container's stdin pipe -> busybox ``cat`` -> its
stdout pipe -> the monitor (json-file log + the attach frame) -> the client's stdout;
against the same round trip through a plain pipe to a ``cat`` subprocess of this script
(the baseline, measured in the same run, interleaved).

Prints one JSON object (microseconds; ``ratio`` = attach p50 / pipe p50).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.busybox import build_busybox_tar

BOX = str(Path(sys.executable).parent / "box")


def _box(env: dict[str, str], *args: str) -> str:
    return subprocess.run([BOX, *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def _round_trip(proc: subprocess.Popen[bytes]) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    start = time.perf_counter()
    os.write(proc.stdin.fileno(), b"x")
    if os.read(proc.stdout.fileno(), 1) != b"x":
        raise SystemExit("the byte did not come back")
    return (time.perf_counter() - start) * 1e6


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOX_ROOT": f"{tmp}/root", "BOX_EXEC_ROOT": f"{tmp}/run"}
        build_busybox_tar(Path(tmp) / "busybox.tar")
        _box(env, "import", f"{tmp}/busybox.tar", "busybox")
        cid = _box(env, "run", "-d", "-i", "--network", "none", "busybox", "cat").strip()
        pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        attach = subprocess.Popen([BOX, "attach", cid], env=env, **pipes)
        plain = subprocess.Popen(["cat"], **pipes)
        try:
            _round_trip(attach)  # connected (the first byte waits for it)
            _round_trip(plain)
            via_attach, via_pipe = [], []
            for _ in range(args.runs):
                via_attach.append(_round_trip(attach))
                via_pipe.append(_round_trip(plain))
        finally:
            for proc in (attach, plain):
                assert proc.stdin is not None
                proc.stdin.close()
            plain.wait()
            _box(env, "rm", "-f", cid)
            attach.wait(timeout=30)
    a50, p50 = statistics.median(via_attach), statistics.median(via_pipe)
    print(json.dumps({
        "bench": "attach", "runs": args.runs, "loadavg": os.getloadavg()[0],
        "attach_p50_us": round(a50, 1), "attach_p90_us": round(_pct(via_attach, 0.9), 1),
        "pipe_p50_us": round(p50, 1), "pipe_p90_us": round(_pct(via_pipe, 0.9), 1),
        "ratio": round(a50 / p50, 2)}))


if __name__ == "__main__":
    main()
