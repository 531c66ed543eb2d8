"""``boxwatch collector``: its options, and wiring discovery, the pipeline, the sinks and
the HTTP server together.

Each sink module listed in ``SINK_OPTIONS`` may offer two hooks: ``add_arguments(parser)``
(its own flags) and ``from_args(args) -> list[Sink]`` (the sinks its flags alone ask for,
e.g. ``--influx-url``). ``--sink KIND[=URL]`` builds one sink by the registry
(``collector.sinks.registry.SINKS``): ``sink_class(kind).from_args(url, args)``, as the
shipper does; the hooks build theirs the same way. The Prometheus sink is always on: it
is what ``/metrics`` serves.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from collector.sinks.base import Sink
from formats.delivery import SinkError
from formats.units import parse_duration

DEFAULT_ROOTS = ("/var/lib/box", "/var/lib/docker")
# sink modules with add_arguments(parser) / from_args(args) hooks; missing ones are skipped
SINK_OPTIONS: dict[str, str] = {
    "influxdb": "collector.sinks.influx",
}


def _duration(value: str) -> float:
    """A flag's duration (``500ms``, ``1s``, ``5m``, ``1h`` or seconds, ``formats.units``)."""
    try:
        return parse_duration(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration (e.g. 500ms, 1s, 5m): {value!r}") from None


def _share(value: str) -> float:
    """A share of one core: a number in (0, 1]."""
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"not a share of one core in (0, 1]: {value!r}")
    return share


def _sink_hooks(name: str) -> list[Callable[..., Any]]:
    """Each SINK_OPTIONS module's hook called ``name`` (modules not there are skipped)."""
    hooks = []
    for module in SINK_OPTIONS.values():
        try:
            hook = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue  # that sink is not installed/written yet
        if hook is not None:
            hooks.append(hook)
    return hooks


def _add_sink_options(parser: argparse.ArgumentParser) -> None:
    for hook in _sink_hooks("add_arguments"):
        hook(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The collector's own flags, then each sink module's."""
    parser.add_argument("--root", action="append", default=None, metavar="DIR",
                        help="state root to discover containers in (repeatable; "
                             f"default {' and '.join(DEFAULT_ROOTS)})")
    parser.add_argument("--cgroup-root", default="/sys/fs/cgroup")
    parser.add_argument("--proc-root", default="/proc")
    parser.add_argument("--sys-root", default="/sys", help="for block device names")
    parser.add_argument("--interval", type=_duration, default=1.0, help="sampling interval (1s)")
    parser.add_argument("--jitter", type=float, default=0.1,
                        help="random spread of each interval, as a fraction of it (0.1)")
    parser.add_argument("--host", default="", metavar="NAME",
                        help="node name on every point and alert (default: the hostname; "
                             "the shipper's --host)")
    parser.add_argument("--listen", default="127.0.0.1:9180", help="HTTP HOST:PORT ('' = off)")
    parser.add_argument("--label-whitelist", action="append", default=[], metavar="KEYS",
                        help="container labels to export, comma-separated (repeatable)")
    parser.add_argument("--history", type=_duration, default=300.0,
                        help="how much history /api/v1/containers/NAME keeps (5m)")
    parser.add_argument("--spec-every", type=int, default=60,
                        help="re-read limit files every N samples "
                             "(60; always when the state file changes)")
    parser.add_argument("--rescan", type=_duration, default=10.0,
                        help="full discovery scan at least this often while inotify reports "
                             "new containers at once (10s; 0 = every interval)")
    parser.add_argument("--enable_metrics", "--enable-metrics", default=None, metavar="LIST",
                        help="cAdvisor's metric categories to export, comma-separated "
                        "(overrides --disable_metrics)")
    parser.add_argument("--disable_metrics", "--disable-metrics", default=None, metavar="LIST",
                        help="cAdvisor's categories not to export; replaces the default "
                        "(memory_numa,tcp,udp,advtcp,sched,process,hugetlb,referenced_memory,"
                        "cpu_topology,resctrl,cpuset), as cAdvisor's flag does")
    parser.add_argument("--per-cpu", action="store_true",
                        help="add cAdvisor's percpu category (per-cpu container_cpu_usage_"
                        "seconds_total; in the default set already, off when the switches "
                        "leave it out)")
    parser.add_argument("--fs-interval", type=_duration, default=60.0,
                        help="walk each container's writable layer this often for "
                             "container_fs_usage_bytes (1m; 0 = never)")
    parser.add_argument("--fs-duty", type=_share, default=0.05,
                        help="the most of one core the layer walks may use (0.05)")
    parser.add_argument("--kube-log-root", default="/var/log", metavar="DIR",
                        help="where the kubelet's containers/ and pods/ log directories are: "
                             "pod, namespace and container labels for kubepods groups "
                             "(/var/log; '' = off)")
    parser.add_argument("--once", action="store_true",
                        help="print one sample of every container as JSON and exit")
    parser.add_argument("--sink", action="append", default=[], metavar="KIND[=URL]",
                        help="also write to this sink (influxdb-v1, influxdb-v2); repeatable")
    _add_sink_options(parser)
    from collector import alerts

    alerts.add_arguments(parser)


def whitelist(args: argparse.Namespace) -> tuple[str, ...]:
    keys: list[str] = []
    for item in args.label_whitelist:
        keys.extend(k.strip() for k in item.split(",") if k.strip())
    return tuple(dict.fromkeys(keys))


def build_sinks(args: argparse.Namespace) -> list[Sink]:
    """The sinks asked for with --sink KIND[=URL], then those the sink modules' own
    flags ask for; SinkError when one cannot be built. One way for both:
    ``sink_class(kind).from_args(url, args)``."""
    from collector.sinks.registry import sink_class

    sinks: list[Sink] = []
    for spec in args.sink:
        kind, _, url = (part.strip() for part in spec.partition("="))
        sinks.append(sink_class(kind).from_args(url, args))
    for hook in _sink_hooks("from_args"):
        sinks.extend(hook(args))
    return sinks


def main(argv: Sequence[str] | None = None, prog: str = "boxwatch collector") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Sample every container's "
                                     "cgroup accounting into Prometheus and InfluxDB.")
    add_arguments(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    args.label_whitelist = whitelist(args)
    from collector.metrics import MetricsError, included

    try:
        args.categories = included(args.enable_metrics, args.disable_metrics)
    except MetricsError as exc:
        for line in exc.lines:
            print(f"{prog}: {line}", file=sys.stderr)
        return 2
    if args.per_cpu:
        args.categories = args.categories | {"percpu"}
    from collector.discover import Discovery
    from collector.pipeline import Pipeline
    from collector.sinks.prometheus import PrometheusSink

    roots = args.root or list(DEFAULT_ROOTS)
    kube = None
    if args.kube_log_root:
        from collector.kubenames import KubeNames

        kube = KubeNames(args.kube_log_root)
    discovery = Discovery(roots, args.cgroup_root, args.label_whitelist, kube=kube)
    if args.once:
        return _once(discovery, args)
    try:
        extra = build_sinks(args)
    except SinkError as exc:
        print(f"boxwatch collector: {exc}", file=sys.stderr)
        return 2
    prometheus = PrometheusSink(args.label_whitelist, None, args.sys_root,
                                categories=args.categories)
    layers = None
    if args.fs_interval > 0:
        from collector.filesystems import Filesystems
        from collector.layers import LayerSizes

        layers = LayerSizes(args.fs_interval, args.fs_duty, filesystems=Filesystems(args.proc_root),
                            proc_root=args.proc_root)
    pipeline = Pipeline(discovery, [prometheus, *extra], cgroup_root=args.cgroup_root,
                        proc_root=args.proc_root, interval=args.interval, jitter=args.jitter,
                        history=args.history, spec_every=args.spec_every, rescan=args.rescan,
                        on_error=lambda msg: print(msg, file=sys.stderr), layers=layers,
                        categories=args.categories)
    prometheus.self_metrics = pipeline.self_metrics
    server = None
    if args.listen:
        from collector.api import Server
        from formats.listen import ListenError, parse_listen

        try:
            host, port = parse_listen(args.listen)
        except ListenError as exc:
            print(f"boxwatch collector: {exc}", file=sys.stderr)
            pipeline.close()
            return 2
        server = Server(pipeline, prometheus, host, port)
        try:
            server.start()
        except OSError as exc:
            print(f"boxwatch collector: cannot listen on {args.listen}: {exc}", file=sys.stderr)
            pipeline.close()
            return 1
        print(f"boxwatch collector: listening on http://{host}:{server.port}", file=sys.stderr)
    from collector.alerts import AlertError
    from collector.alerts import from_args as oom_watcher

    try:
        watcher = oom_watcher(args, on_error=lambda msg: print(msg, file=sys.stderr))
    except AlertError as exc:
        print(f"boxwatch collector: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
        pipeline.close()
        return 2
    if watcher is not None:
        pipeline.on_scan.append(watcher.sync)
        pipeline.on_exited.append(watcher.ended)
        watcher.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: pipeline.stop())
    try:
        pipeline.run()
    finally:
        if server is not None:
            server.stop()
        if watcher is not None:
            watcher.close()
        pipeline.close()
    return 0


def _once(discovery: object, args: argparse.Namespace) -> int:
    """One sample of every container, printed as one JSON object."""
    from collector.api import dumps, sample_to_dict
    from collector.pipeline import Pipeline

    pipeline = Pipeline(discovery, [], cgroup_root=args.cgroup_root,
                        proc_root=args.proc_root, history=0, spec_every=1,
                        on_error=lambda msg: print(msg, file=sys.stderr))
    try:
        samples = pipeline.tick()
        doc = {
            "timestamp_ns": time.time_ns(),
            "containers": [sample_to_dict(s) for s in sorted(samples, key=lambda s: s.ref.id)],
            "read_errors": pipeline.stats.read_errors_total,
        }
    finally:
        pipeline.close()
    sys.stdout.buffer.write(dumps(doc) + b"\n")
    sys.stdout.flush()
    return 0
