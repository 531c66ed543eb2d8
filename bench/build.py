"""``box build`` of a small multi-stage program, cold and fully cached, beside
``buildah bud`` (Debian's buildah, vfs storage, its own temporary root, ``--layers`` so
it caches, RUN under runc with no network) on the same Dockerfile and context, in the
same run. The base image is the busybox test image; buildah gets it from ``box save``
(docker-archive), no network.

Prints one JSON object: cold/cached medians in ms for both, the step count, and whether
the cached rebuild met the target (issue 19: under a second).
"""

from __future__ import annotations

import argparse
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

from tests.support.busybox import build_busybox_tar

BOX = str(Path(sys.executable).parent / "box")
DOCKERFILE = """\
FROM busybox AS build
ENV APP=/src OUT=/out
WORKDIR /src
COPY words.txt lib.sh ./
RUN sort -u words.txt > sorted.txt && wc -l < sorted.txt > count.txt
RUN mkdir -p $OUT && . ./lib.sh && render sorted.txt > $OUT/index.txt
COPY main.sh /out/main.sh
RUN chmod 755 /out/main.sh && gzip -k $OUT/index.txt

FROM busybox
ENV GREETING=hello
COPY --from=build /out /app
COPY --from=build /src/count.txt /app/
CMD ["/app/main.sh"]
"""


def _context(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "Dockerfile").write_text(DOCKERFILE)
    (path / "words.txt").write_text("".join(f"word{i % 997}\n" for i in range(20000)))
    (path / "lib.sh").write_text(
        'render() { while read -r w; do echo "<li>$w</li>"; done < "$1"; }\n')
    (path / "main.sh").write_text('#!/bin/sh\necho "$GREETING: $(cat /app/count.txt) words"\n')


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return (time.perf_counter() - t0) * 1000


def bench_box(tmp: Path, ctx: Path, runs: int) -> dict[str, float]:
    cold, cached = [], []
    for n in range(runs):
        root = tmp / f"box{n}"
        env = {**os.environ, "BOX_ROOT": str(root / "root"), "BOX_EXEC_ROOT": str(root / "run"),
               "BOX_DEFAULT_NETWORK": "none"}
        subprocess.run([BOX, "import", str(tmp / "busybox.tar"), "busybox"], env=env,
                       check=True, capture_output=True)
        cold.append(_timed([BOX, "build", "-t", "app:bench", str(ctx)], env))
        cached.append(_timed([BOX, "build", "-t", "app:bench", str(ctx)], env))
        out = subprocess.run([BOX, "run", "--rm", "app:bench"], env=env, capture_output=True,
                             text=True, check=True).stdout
        assert out == "hello: 997 words\n", out
        if n == 0:
            subprocess.run([BOX, "save", "-o", str(tmp / "busybox-docker.tar"), "busybox"],
                           env=env, check=True)
        subprocess.run([BOX, "rm", "-f", *subprocess.run(
            [BOX, "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()],
            env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return {"cold_ms": round(statistics.median(cold)),
            "cached_ms": round(statistics.median(cached)),
            "cold_all_ms": [round(v) for v in cold], "cached_all_ms": [round(v) for v in cached]}


def bench_buildah(tmp: Path, ctx: Path, runs: int) -> dict[str, object] | None:
    buildah = shutil.which("buildah")
    if buildah is None:
        return None
    cold, cached = [], []
    for n in range(runs):
        store = tmp / f"buildah{n}"
        base = [buildah, "--root", str(store / "root"), "--runroot", str(store / "run"),
                "--storage-driver", "vfs"]
        subprocess.run([*base, "pull", f"docker-archive:{tmp / 'busybox-docker.tar'}"],
                       check=True, capture_output=True)
        bud = [*base, "bud", "--layers", "--pull=never", "--network", "none", "--isolation",
               "oci", "-t", "app:bench", str(ctx)]  # runc, as box confines RUN
        cold.append(_timed(bud))
        cached.append(_timed(bud))
        subprocess.run([*base, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(store, ignore_errors=True)
    return {"cold_ms": round(statistics.median(cold)),
            "cached_ms": round(statistics.median(cached)),
            "cold_all_ms": [round(v) for v in cold], "cached_all_ms": [round(v) for v in cached],
            "version": subprocess.run([buildah, "--version"], capture_output=True,
                                      text=True).stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="box-bench-build-"))
    try:
        build_busybox_tar(tmp / "busybox.tar")
        ctx = tmp / "ctx"
        _context(ctx)
        box = bench_box(tmp, ctx, args.runs)
        buildah = bench_buildah(tmp, ctx, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "steps": 13, "runs": args.runs, "box": box, "buildah": buildah,
        "cached_under_1s": box["cached_ms"] < 1000,
        "cold_ratio_box_over_buildah": round(box["cold_ms"] / buildah["cold_ms"], 2)
        if buildah else None,
        "cached_ratio_box_over_buildah": round(box["cached_ms"] / buildah["cached_ms"], 2)
        if buildah else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
