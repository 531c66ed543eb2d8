"""Image store benchmarks, JSON on stdout.

1. Layer extraction throughput: our safe extractor (with its tar-split, as the store runs
   it) against GNU ``tar -x`` of the same layer in the same run, plain and gzip'd.
   Target: ratio >= 0.8.
2. Disk used by two images sharing a base layer: the store keeps the base once, so the
   layers directory is about base + top, not 2 x base + top.

Run as root (ownership is restored, like ``tar -x`` as root): ``python bench/images.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.images.extract import extract_layer
from runtime.images.store import ImageStore
from tests.support.busybox import build_busybox_tar
from tests.support.images import build_layered_archive

RUNS = 5


def synthetic_layer(path: Path, files: int = 4000, seed: int = 7) -> int:
    """A layer shaped like a distro's: many small files, some large, dirs, symlinks."""
    import random

    rng = random.Random(seed)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in range(files // 40):
            ti = tarfile.TarInfo(f"usr/lib/pkg{d:03d}")
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(ti)
            for f in range(40):
                size = rng.choice([200, 1500, 4000, 12000, 40000, 300000 if f == 0 else 2000])
                ti = tarfile.TarInfo(f"usr/lib/pkg{d:03d}/file{f:02d}.so")
                ti.size, ti.mode, ti.mtime = size, 0o644, 1_700_000_000
                tf.addfile(ti, io.BytesIO(rng.randbytes(size // 2) + bytes(size - size // 2)))
                if f % 10 == 0:
                    ln = tarfile.TarInfo(f"usr/lib/pkg{d:03d}/link{f:02d}")
                    ln.type, ln.linkname, ln.mtime = (
                        tarfile.SYMTYPE,
                        f"file{f:02d}.so",
                        1_700_000_000,
                    )
                    tf.addfile(ln)
    return path.stat().st_size


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_extract(work: Path, layer: Path, label: str, compressed: bool) -> dict:
    size = layer.stat().st_size
    ours, tar = [], []
    for i in range(RUNS):
        dest = work / f"ours-{i}"

        def run_ours() -> None:
            with open(layer, "rb") as f:
                extract_layer(f, dest, split_path=str(work / f"split-{i}.gz"))  # noqa: B023

        ours.append(_time(run_ours))
        tdest = work / f"tar-{i}"
        tdest.mkdir()
        flags = "-xzf" if compressed else "-xf"
        tar.append(_time(lambda: subprocess.run(["tar", flags, str(layer), "-C", str(tdest)],  # noqa: B023
                                                check=True)))
        shutil.rmtree(dest)
        shutil.rmtree(tdest)
        os.unlink(work / f"split-{i}.gz")
    o, t = statistics.median(ours), statistics.median(tar)
    return {"layer": label, "bytes": size, "runs": RUNS,
            "ours_s": round(o, 4), "gnu_tar_s": round(t, 4),
            "ours_MBps": round(size / o / 1e6, 1), "gnu_tar_MBps": round(size / t / 1e6, 1),
            "ratio_vs_tar": round(t / o, 3)}


def du(path: Path) -> int:
    """Bytes of disk blocks used under ``path`` (du -s --block-size=1)."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[0])


def bench_shared_base(work: Path) -> dict:
    store = ImageStore(work / "root")
    base_tar = build_busybox_tar(work / "base.tar")
    with open(base_tar, "rb") as f:
        store.import_tarball(f, "base:1")
    build_layered_archive(work / "layered.tar", workdir=work)
    from runtime.images.load import load, open_source

    src = open_source(str(work / "layered.tar"), str(work / "spool"))
    try:
        load(store, src)
    finally:
        src.close()
    images = store.list()
    base = images[-1] if len(images[-1].diff_ids) == 1 else images[0]
    base_dir = Path(base.layer_dirs[0])
    per_image = {tuple(i.repo_tags)[0]: sum(du(Path(d)) for d in i.layer_dirs) for i in images}
    return {"images": len(images), "base_layer_bytes_on_disk": du(base_dir),
            "sum_of_image_sizes_bytes": sum(per_image.values()),
            "layers_dir_bytes_on_disk": du(Path(store.layers)),
            "base_counted_once": du(Path(store.layers)) < sum(per_image.values())}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="box-bench-images-"))
    try:
        results = []
        busybox = build_busybox_tar(work / "busybox.tar")
        synth = work / "synthetic.tar"
        synthetic_layer(synth)
        for label, path in (("busybox", busybox), ("synthetic-4000-files", synth)):
            results.append(bench_extract(work, path, label, compressed=False))
            gz = work / f"{label}.tar.gz"
            gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=6))
            results.append(bench_extract(work, gz, label + "+gzip", compressed=True))
        print(json.dumps({"extract": results, "shared_base": bench_shared_base(work)}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
