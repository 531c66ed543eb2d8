"""What sizing a writable layer costs (issue 16): the SizeRw walk of ``formats.layers``
over a layer of N files (warm dentry and inode caches, as a layer walked once a minute
is), alone and paced by ``collector.layers.LayerSizes`` at its default cost cap, and what
the default cadence (each layer every 60 s) then costs per 1 s sampling interval.

Prints one JSON object: per 10k files the walk's CPU and wall ms (best of ``--runs``),
the paced walk's CPU and wall ms and its CPU share, and for ``--containers`` layers of
that size: the cadence's CPU ms per interval (capped at ``--duty`` of a core) and how
often each layer is then really walked.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.layers import LayerSizes
from formats.layers import LayerWalk, tree_size


def build(root: Path, files: int, per_dir: int = 100) -> int:
    """``files`` files of 1-4 KiB in directories of ``per_dir``; their total size."""
    total = 0
    for i in range(files):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        size = 1024 * (1 + i % 4)
        (d / f"f{i:06d}").write_bytes(b"x" * size)
        total += size
    return total


def walk_cost(path: str, runs: int) -> tuple[float, float, int]:
    """(best CPU ms, best wall ms, entries) of the unpaced walk."""
    best_cpu = best_wall = float("inf")
    entries = 0
    for _ in range(runs):
        c0, w0 = time.thread_time(), time.perf_counter()
        walk = LayerWalk(path)
        walk.step()
        best_cpu = min(best_cpu, (time.thread_time() - c0) * 1000)
        best_wall = min(best_wall, (time.perf_counter() - w0) * 1000)
        entries = walk.entries
    return best_cpu, best_wall, entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--duty", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="boxwatch-layer-bench-") as tmp:
        diff = Path(tmp) / "diff"
        expected = build(diff, args.files)
        assert tree_size(str(diff)) == expected
        cpu_ms, wall_ms, entries = walk_cost(str(diff), args.runs)
        layers = LayerSizes(every=args.every, duty=args.duty)
        w0 = time.perf_counter()
        usage = layers.walk(str(diff))
        paced_wall = (time.perf_counter() - w0) * 1000
        assert usage is not None and usage.usage == expected
        paced_cpu = layers.cpu_seconds_total * 1000
    scale = 10_000 / args.files
    # CPU ms per 1 s of sampling: the cadence's, but never above the cap (then each
    # layer is walked less often than every ``every`` seconds)
    wanted = args.containers * cpu_ms / args.every
    per_interval = min(wanted, args.duty * 1000)
    round_s = max(args.every, args.containers * cpu_ms / 1000 / args.duty)
    print(json.dumps({
        "files": args.files,
        "entries": entries,
        "walk_cpu_ms_per_10k_files": round(cpu_ms * scale, 1),
        "walk_wall_ms_per_10k_files": round(wall_ms * scale, 1),
        "walk_us_per_entry": round(cpu_ms * 1000 / entries, 2),
        "paced_walk_cpu_ms": round(paced_cpu, 1),
        "paced_walk_wall_ms": round(paced_wall, 1),
        "paced_cpu_share": round(paced_cpu / paced_wall, 3),
        "duty": args.duty,
        "every_s": args.every,
        "containers": args.containers,
        "cadence_cpu_ms_per_1s_interval_wanted": round(wanted, 2),
        "cadence_cpu_ms_per_1s_interval": round(per_interval, 2),
        "each_layer_walked_every_s": round(round_s, 1),
        "cadence_cpu_us_per_container_per_interval": round(per_interval * 1000
                                                           / args.containers, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
