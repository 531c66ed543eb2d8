"""Start-to-exit wall time of ``box run --rm --network none IMAGE true``, beside
``unshare --fork --pid --mount --uts --ipc --net --mount-proc true`` in the same run.

Prints one JSON object: p50_ms, p95_ms, baseline_p50_ms, ratio and the run count.
Target (issue 2): p50 <= 60 ms.
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


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOX_ROOT": f"{tmp}/root", "BOX_EXEC_ROOT": f"{tmp}/run"}
        build_busybox_tar(Path(tmp) / "busybox.tar")
        subprocess.run([BOX, "import", f"{tmp}/busybox.tar", "busybox"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        box_cmd = [BOX, "run", "--rm", "--network", "none", "busybox", "true"]
        base_cmd = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
                    "--mount-proc", "true"]
        for _ in range(3):  # warm the page cache
            _time(box_cmd, env)
            _time(base_cmd, env)
        box_ms, base_ms = [], []
        for _ in range(args.runs):  # interleaved, so noise hits both alike
            box_ms.append(_time(box_cmd, env))
            base_ms.append(_time(base_cmd, env))
        left = list(Path(tmp, "root", "containers").iterdir())
    print(json.dumps({
        "bench": "runtime_start",
        "runs": args.runs,
        "p50_ms": round(statistics.median(box_ms), 2),
        "p95_ms": round(_pct(box_ms, 0.95), 2),
        "baseline_p50_ms": round(statistics.median(base_ms), 2),
        "baseline_p95_ms": round(_pct(base_ms, 0.95), 2),
        "ratio_p50": round(statistics.median(box_ms) / statistics.median(base_ms), 2),
        "containers_left": len(left),
    }))


if __name__ == "__main__":
    main()
