"""Start-to-exit wall time of ``box run --rm --network none IMAGE true``, beside
``unshare --fork --pid --mount --uts --ipc --net --mount-proc true`` and, when Debian's
``runc`` is installed, ``runc run`` of the same busybox rootfs, in the same run.

Prints one JSON object: p50_ms, p95_ms, baseline_p50_ms, runc_p50_ms, ratios and the run
count. Targets: p50 <= 60 ms (issue 2); p50 <= 2.5x runc's (issue 14: device rules and
the seccomp profile included). ``--compare LAUNCHER`` also times another ``box`` (say, a
launcher of main's tree) on a root of its own, interleaved: before and after in one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.busybox import build_busybox_rootfs, build_busybox_tar

BOX = str(Path(sys.executable).parent / "box")


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _runc_bundle(tmp: str) -> list[str] | None:
    """``runc run`` of the busybox rootfs with runc's default spec (its namespaces,
    device rules, masked paths), no terminal; None without runc."""
    runc = shutil.which("runc")
    if runc is None:
        return None
    bundle = Path(tmp, "bundle")
    build_busybox_rootfs(bundle / "rootfs")
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(spec))
    return [runc, "--root", f"{tmp}/runc-state", "run", "--bundle", str(bundle)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--compare", metavar="LAUNCHER", help="another box to time alongside")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOX_ROOT": f"{tmp}/root", "BOX_EXEC_ROOT": f"{tmp}/run"}
        build_busybox_tar(Path(tmp) / "busybox.tar")
        subprocess.run([BOX, "import", f"{tmp}/busybox.tar", "busybox"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        box_cmd = [BOX, "run", "--rm", "--network", "none", "busybox", "true"]
        other_env = {**env, "BOX_ROOT": f"{tmp}/root2", "BOX_EXEC_ROOT": f"{tmp}/run2"}
        other_cmd = [args.compare, *box_cmd[1:]] if args.compare else None
        if other_cmd:
            subprocess.run([args.compare, "import", f"{tmp}/busybox.tar", "busybox"],
                           env=other_env, check=True, stdout=subprocess.DEVNULL)
        base_cmd = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
                    "--mount-proc", "true"]
        runc_cmd = _runc_bundle(tmp)
        names = itertools.count()

        def runc() -> list[str]:  # a fresh container name per run
            return [*runc_cmd, f"bench-{os.getpid()}-{next(names)}"]

        for _ in range(3):  # warm the page cache
            _time(box_cmd, env)
            if other_cmd:
                _time(other_cmd, other_env)
            _time(base_cmd, env)
            if runc_cmd:
                _time(runc(), env)
        box_ms, base_ms, runc_ms, other_ms = [], [], [], []
        for _ in range(args.runs):  # interleaved, so noise hits all alike
            box_ms.append(_time(box_cmd, env))
            if other_cmd:
                other_ms.append(_time(other_cmd, other_env))
            base_ms.append(_time(base_cmd, env))
            if runc_cmd:
                runc_ms.append(_time(runc(), env))
        left = list(Path(tmp, "root", "containers").iterdir())
    print(json.dumps({
        "bench": "runtime_start",
        "runs": args.runs,
        "p50_ms": round(statistics.median(box_ms), 2),
        "p95_ms": round(_pct(box_ms, 0.95), 2),
        "baseline_p50_ms": round(statistics.median(base_ms), 2),
        "baseline_p95_ms": round(_pct(base_ms, 0.95), 2),
        "ratio_p50": round(statistics.median(box_ms) / statistics.median(base_ms), 2),
        **({"runc_p50_ms": round(statistics.median(runc_ms), 2),
            "runc_p95_ms": round(_pct(runc_ms, 0.95), 2),
            "ratio_runc_p50": round(statistics.median(box_ms) / statistics.median(runc_ms), 2)}
           if runc_ms else {}),
        **({"compare_p50_ms": round(statistics.median(other_ms), 2),
            "compare_p95_ms": round(_pct(other_ms, 0.95), 2),
            **({"compare_ratio_runc_p50": round(statistics.median(other_ms)
                                                / statistics.median(runc_ms), 2)}
               if runc_ms else {})}
           if other_ms else {}),
        "containers_left": len(left),
    }))


if __name__ == "__main__":
    main()
