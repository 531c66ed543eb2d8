"""CPU per container-sample of the collector, all in, beside a raw-read floor.

Creates N cgroup groups ``/box/bench-<i>`` (with the runtime's driver: v1, or v2 on a
pure v2 root), each holding
a sleeping process, and a box-style state root describing them (config.v2.json with the
cgroup paths and the pid, so discovery, net/dev and the readers all do their real work).
Then, in one process and one run:

- ``tick_us``: one pipeline interval (discovery scan, read + parse every container,
  events, history, the sinks' ``write``) per container;
- ``read_us``: the readers alone; ``floor_us``: open/read/close of the same files with
  no parsing (what any reader of these files pays); ``pread_floor_us``: one pread of
  each file the readers hold, no parsing (the kernel's share of ``read_us``);
- ``prom_us``: rendering ``/metrics`` per container, half an interval after each tick;
  ``influx_us``: what the InfluxDB sink does per container: line protocol and the batch
  joined, as posted to a server on loopback (the default deployment; ``--influx-gzip
  auto`` sends it plain there); ``influx_gzip_us`` with the level-1 gzip a remote server
  gets (``us_per_sample_scrape_15s_gzip``);
- ``us_per_sample`` = tick + prom + influx: all in, scraped every interval
  (``scrape_interval_s`` 1 at the default 1 s interval); ``us_per_sample_scrape_15s``:
  the same with Prometheus scraping every 15 s (the usual scrape_interval): ``prom_15s_us``
  is measured on renders 15 ticks apart (``--scrape15-rounds``).

Ticks run as ``Pipeline.run`` runs them: inotify watches the state and cgroup
directories, so a tick only reads and every ``--rescan-every``-th tick (10: the
collector's ``--rescan 10s`` at 1 s) also scans. The measured ticks are paced at
``--interval`` (1 s) as the collector paces them: the readers skip files whose value
cannot have changed since their last read (an idle group's cpuacct.stat and cpu.stat),
so ticks run back to back would read idle groups' files less and busy ones' more than a
real interval does, and caches stay warmer. Each figure is measured in ``--rounds``
rounds and the median is reported (this machine is shared; ``*_range`` gives min-max).
``read_floor_us`` is one pread of exactly the files an ordinary read pass reads.

By default the containers look like real ones: each process has its own network
namespace (``unshare --net``) and its group has a memory limit, a cpu quota and a pids
cap (``--unlimited`` and ``--netns host`` measure the other cases: a collector may skip
work for unlimited groups and for containers sharing a namespace).

With ``--netdata`` it then runs netdata's C cgroups plugin on the same groups for a
same-run baseline (``netdata_us_per_sample``, ``netdata_over_us_scrape_15s``).

With ``--churn K`` it also starts and stops K containers (groups + state files) while
ticking and reports whether held descriptors returned to the baseline. Everything it
creates is removed, also on failure. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import CGROUP_ROOT, BenchGroups, Fleet

from collector.discover import Discovery
from collector.lineproto import Encoder
from collector.metrics import included
from collector.nofile import ensure_nofile
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink


def _cpu() -> float:
    return time.process_time()


def _floor_files(pipeline: Pipeline) -> tuple[list[str], list[int]]:
    """The files the readers hold (paths, and the held descriptors, each once)."""
    files, fds, nets = [], [], set()
    for reader in pipeline._readers.values():
        for held in reader._held:
            files.extend(f"{held.directory}/{name}" for name in held.fds)
            fds.extend(held.fds.values())
        net = reader._net
        dev = getattr(net, "_dev", net)  # a NetReader of its own (older collectors)
        if (
            dev is not None
            and getattr(dev, "fd", getattr(dev, "_fd", -1)) >= 0
            and id(dev) not in nets
        ):
            nets.add(id(dev))
            files.append(dev.path)
            fds.append(getattr(dev, "fd", getattr(dev, "_fd", -1)))
    return files, fds


def _touched_fds(pipeline: Pipeline, readers: list) -> list[tuple[int, int]]:
    """(fd, size) of every pread one ordinary read pass makes (the gates of idle groups
    included): the kernel's share of ``read_us``, measured as ``read_floor_us``."""
    import cgroupstats.net as net
    import cgroupstats.v1.blkio as v1_blkio
    import cgroupstats.v1.cpu as v1_cpu
    import cgroupstats.v1.memory as v1_memory
    import cgroupstats.v1.pids as v1_pids
    import cgroupstats.v2.cpu as v2_cpu
    import cgroupstats.v2.io as v2_io
    import cgroupstats.v2.memory as v2_memory
    import cgroupstats.v2.pids as v2_pids
    import cgroupstats.v2.psi as v2_psi

    modules = (v1_blkio, v1_cpu, v1_memory, v1_pids, v2_cpu, v2_io, v2_memory, v2_pids,
               v2_psi, net)
    touched: list[tuple[int, int]] = []

    def recording(fd: int, size: int, offset: int) -> bytes:
        touched.append((fd, size))
        return os.pread(fd, size, offset)

    for m in modules:
        m.pread = recording
    try:
        pipeline.net.advance()
        pipeline.oom.advance()
        for r in readers:
            r.read()
    finally:
        for m in modules:
            m.pread = os.pread
    return touched


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) & 1 else (xs[mid - 1] + xs[mid]) / 2


def run(n: int, ticks: int, churn: int, churn_batch: int, limited: bool = True,
        own_netns: bool = True, spec_every: int = 10, rounds: int = 5,
        rescan_every: int = 10, active: bool = False,
        interval: float = 1.0, netdata: bool = False,
        scrape15_rounds: int = 3, metrics: str = "") -> dict[str, object]:
    ensure_nofile(n * 20 + 1024)
    cats = included(metrics or None)
    root = Path(tempfile.mkdtemp(prefix="box-bench-"))
    factory = BenchGroups()
    fleet = Fleet(root, factory, limited, own_netns, active)
    prom = PrometheusSink(("bench",), categories=cats)
    pipeline = Pipeline(Discovery([root], CGROUP_ROOT, ("bench",), factories=(factory,)),
                        [prom], history=300.0, spec_every=spec_every, categories=cats,
                        interval=interval)
    prom.self_metrics = pipeline.self_metrics
    encoder = Encoder("bench", cats)
    out: dict[str, object] = {"containers": n, "ticks": ticks, "rounds": rounds,
                              "limited": limited, "own_netns": own_netns, "active": active,
                              "spec_every": spec_every, "rescan_every": rescan_every,
                              "interval_s": interval, "scrape_interval_s": interval,
                              "metrics": ",".join(sorted(cats)),
                              "families": len(prom.table)}
    try:
        t0 = time.perf_counter()
        for i in range(n):
            fleet.add(f"bench-{i}", with_process=True)
        out["setup_s"] = round(time.perf_counter() - t0, 2)
        watching = pipeline._watch()
        out["inotify"] = watching
        for _ in range(3):  # warm: open readers, fill caches
            pipeline.tick()
        assert pipeline.stats.containers == n, pipeline.stats
        per = ticks * n
        # RSS of the collector's own work (ticks and scrapes), before the bench holds
        # lists of paths, descriptors and samples for its floors
        for _ in range(ticks):
            pipeline.tick(rescan=not watching)
            prom.render()
        rss_collecting = _rss_mb()
        readers = list(pipeline._readers.values())
        files, fds = _floor_files(pipeline)
        for _ in range(2):  # paced ticks first: the gates as in steady state
            time.sleep(interval)
            pipeline.tick(rescan=not watching)
        time.sleep(interval)
        touched = _touched_fds(pipeline, readers)
        out["files_per_container"] = round(len(files) / n, 1)
        out["reads_per_container"] = round(len(touched) / n, 1)
        encoder_samples = list(pipeline.latest.values())
        pread = os.pread
        parts: dict[str, list[float]] = {k: [] for k in (
            "tick_us", "prom_us", "read_us", "read_floor_us", "pread_floor_us", "floor_us",
            "influx_us", "influx_gzip_us")}
        k = 0
        for _ in range(rounds):
            tick_cpu = prom_cpu = 0.0
            next_at = time.monotonic()
            for _ in range(ticks):  # a scrape after every tick: fresh samples each time
                next_at += interval
                k += 1
                c = _cpu()
                pipeline.tick(rescan=not watching or k % rescan_every == 0)
                tick_cpu += _cpu() - c
                # the scrape half an interval later (a scraper's phase is arbitrary)
                time.sleep(max(0.0, next_at - interval / 2 - time.monotonic()))
                c = _cpu()
                body = prom.render()
                prom_cpu += _cpu() - c
                time.sleep(max(0.0, next_at - time.monotonic()))  # the collector's pace
            parts["tick_us"].append(tick_cpu / per * 1e6)
            parts["prom_us"].append(prom_cpu / per * 1e6)

            c = _cpu()
            for _ in range(ticks):
                pipeline.net.advance()  # as each tick does: every namespace read again
                pipeline.oom.advance()
                for r in readers:
                    r.read()
            parts["read_us"].append((_cpu() - c) / per * 1e6)

            c = _cpu()
            for _ in range(ticks):
                for fd in fds:
                    pread(fd, 65536, 0)
            parts["pread_floor_us"].append((_cpu() - c) / per * 1e6)
            c = _cpu()
            for _ in range(ticks):
                for fd, size in touched:
                    pread(fd, size, 0)
            parts["read_floor_us"].append((_cpu() - c) / per * 1e6)
            c = _cpu()
            for _ in range(ticks):
                for path in files:
                    fd = os.open(path, os.O_RDONLY)
                    os.read(fd, 65536)
                    os.close(fd)
            parts["floor_us"].append((_cpu() - c) / per * 1e6)

            for key, compress in (("influx_us", False), ("influx_gzip_us", True)):
                c = _cpu()
                for _ in range(ticks):  # what the InfluxDB v1 sink does with a batch
                    lines: list[str] = []
                    for s in encoder_samples:
                        lines.extend(encoder.sample(s))
                    batch = ("\n".join(lines) + "\n").encode()
                    if compress:
                        gzip.compress(batch, compresslevel=1)
                parts[key].append((_cpu() - c) / per * 1e6)
        # a 15 s scrape: one render after 15 ticks (colder, and more values moved, than
        # a render every second); three of them, 45 s at the default interval
        prom15: list[float] = []
        for _ in range(scrape15_rounds):
            next_at = time.monotonic()
            for i in range(15):
                next_at += interval
                k += 1
                pipeline.tick(rescan=not watching or k % rescan_every == 0)
                if i == 14:
                    time.sleep(max(0.0, next_at - interval / 2 - time.monotonic()))
                    c = _cpu()
                    prom.render()
                    prom15.append((_cpu() - c) / n * 1e6)
                time.sleep(max(0.0, next_at - time.monotonic()))
        if prom15:
            parts["prom_15s_us"] = prom15
        for key, xs in parts.items():
            if xs:
                out[key] = round(_median(xs), 2)
                out[key.removesuffix("_us") + "_range"] = [round(min(xs), 2), round(max(xs), 2)]
        out["prom_bytes_per_container"] = len(body) // n
        influx = out.get("influx_us", 0.0)
        out["us_per_sample"] = round(out["tick_us"] + out["prom_us"] + influx, 2)
        prom_15s = out.get("prom_15s_us", out["prom_us"])
        out["us_per_sample_scrape_15s"] = round(
            out["tick_us"] + prom_15s / 15 + influx, 2)
        out["us_per_sample_scrape_15s_gzip"] = round(
            out["tick_us"] + prom_15s / 15 + out["influx_gzip_us"], 2)
        out["cpu_pct_of_core_at_1s"] = round(out["us_per_sample"] * n / 1e4, 2)
        out["rss_mb"] = round(rss_collecting, 1)  # ticks and scrapes, before the floors
        out["rss_end_mb"] = round(_rss_mb(), 1)  # with the bench's own lists, after its loops
        out["fds_held"] = pipeline.open_files
        out["fds_per_container"] = round(pipeline.open_files / n, 1)
        out["history_mb"] = round(pipeline.history.nbytes() / 2**20, 1)
        out["rlimit_nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

        if netdata:
            from netdata_baseline import measure

            out.update(measure(n))
            if "netdata_us_per_sample" in out:
                out["netdata_over_us_scrape_15s"] = round(
                    out["netdata_us_per_sample"] / out["us_per_sample_scrape_15s"], 2)
        if churn:
            base = _fds()
            t0 = time.perf_counter()
            done = 0
            while done < churn:
                batch = [fleet.add(f"bench-churn-{done + k}", with_process=False)
                         for k in range(min(churn_batch, churn - done))]
                pipeline.tick()
                for cid in batch:
                    fleet.drop(cid)
                pipeline.tick()
                done += len(batch)
            out["churn_starts_stops"] = done
            out["churn_s"] = round(time.perf_counter() - t0, 1)
            out["churn_fds_before"] = base
            out["churn_fds_after"] = _fds()
            out["churn_fds_ok"] = _fds() <= base
    finally:
        pipeline.close()
        fleet.remove()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--containers", type=int, default=200)
    ap.add_argument("--ticks", type=int, default=20)
    ap.add_argument("--churn", type=int, default=0, help="container starts+stops to run")
    ap.add_argument("--churn-batch", type=int, default=50)
    ap.add_argument("--unlimited", action="store_true", help="groups without limits")
    ap.add_argument("--netns", choices=("own", "host"), default="own",
                    help="own: a network namespace per container; host: all share the host's")
    ap.add_argument("--spec-every", type=int, default=60,
                    help="re-read limits every N samples (the collector's --spec-every, 60)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of --ticks; medians reported")
    ap.add_argument("--rescan-every", type=int, default=10,
                    help="a full discovery scan every N ticks (--rescan 10s at 1 s)")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="seconds between the measured ticks, as the collector paces them "
                         "(1; 0 = back to back, which skews the files read: see the docstring)")
    ap.add_argument("--scrape15-rounds", type=int, default=3,
                    help="renders measured 15 ticks apart (a 15 s scrape); 0 = estimate from the 1 "
                         "s ones")
    ap.add_argument("--netdata", action="store_true",
                    help="also run netdata's cgroups plugin on the same groups "
                         "(bench/netdata_baseline.py)")
    ap.add_argument("--enable_metrics", "--enable-metrics", default="", metavar="LIST",
                    help="cAdvisor's categories, as the collector takes them (default: "
                         "cAdvisor's default set)")
    ap.add_argument("--active", action="store_true",
                    help="each container's process wakes every 0.5 s instead of sleeping")
    args = ap.parse_args()
    print(json.dumps(run(args.containers, args.ticks, args.churn, args.churn_batch,
                         not args.unlimited, args.netns == "own", args.spec_every,
                         args.rounds, args.rescan_every, args.active, args.interval,
                         args.netdata, args.scrape15_rounds, args.enable_metrics)))


if __name__ == "__main__":
    main()
