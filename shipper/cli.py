"""``boxwatch shipper``: tail every container's log into the sinks, losing nothing.

``add_arguments(parser)`` adds the shipper's flags (and each sink module's, through its
own ``add_arguments`` hook); ``run(args)`` ships until SIGTERM/SIGINT; ``main(argv)`` is
the ``boxwatch`` subcommand entry (also ``python -m shipper.cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence

from formats.units import ram_in_bytes
from shipper.parse.partial import DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_LINE_BYTES
from shipper.sources.paths import DEFAULT_ROOTS

log = logging.getLogger("shipper")

DEFAULT_REGISTRY = "/var/lib/boxwatch/shipper-registry.json"


class CliError(Exception):
    """A flag value the shipper cannot use; the message names it and the value."""


def _size(text: str) -> int:
    """``1048576``, ``512k``, ``1m``, ``1MiB``, ``2g`` -> bytes (binary units: go-units
    ``RAMInBytes``, ``formats.units``)."""
    try:
        return ram_in_bytes(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shipper's flags, then every registered sink module's own."""
    parser.add_argument("--root", action="append", default=None, metavar="DIR",
                        help="container state root to watch (<root>/containers/*/); "
                        f"repeatable; default {' and '.join(DEFAULT_ROOTS)}")
    parser.add_argument("--path", action="append", default=[], metavar="GLOB",
                        help="also tail files matching GLOB (CRI or json-file), e.g. "
                        "/var/log/pods/*/*/*.log; repeatable")
    parser.add_argument("--sink", action="append", default=[], metavar="KIND=URL",
                        help="where to ship: file=PATH|-, influxdb=URL, loki=URL, "
                        "elasticsearch=URL; repeatable")
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, metavar="PATH",
                        help="offset registry file (written atomically after each "
                        f"acknowledged batch); default {DEFAULT_REGISTRY}")
    parser.add_argument("--max-line-bytes", type=_size, default=DEFAULT_MAX_LINE_BYTES,
                        help="cap of a joined line; the rest is cut and the entry flagged "
                        "truncated (default 1MiB)")
    parser.add_argument("--multiline-start", default=None, metavar="REGEX",
                        help="join lines into events that start with a line matching REGEX")
    parser.add_argument("--label-whitelist", action="append", default=[], metavar="NAME",
                        help="container labels to ship (name or glob; repeatable or "
                        "comma-separated)")
    parser.add_argument("--max-buffer-bytes", type=_size, default=16 << 20,
                        help="read data held unacknowledged before reading pauses "
                        "(default 16MiB)")
    parser.add_argument("--batch-bytes", type=_size, default=2 << 20,
                        help="bytes of log read per batch at most (default 2MiB)")
    parser.add_argument("--listen", default="127.0.0.1:9181", metavar="HOST:PORT",
                        help="/metrics and /healthz (default 127.0.0.1:9181; 'none': off)")
    parser.add_argument("--host", default=None, help="node name on every record "
                        "(default: the hostname)")
    parser.add_argument("--poll-interval", type=float, default=0.1,
                        help="seconds between reads of an idle file (default 0.1)")
    parser.add_argument("--rescan-interval", type=float, default=5.0,
                        help="seconds between full rescans besides inotify (default 5)")
    parser.add_argument("--partial-flush", type=float, default=DEFAULT_FLUSH_TIMEOUT,
                        help="seconds after which an unfinished partial line is shipped "
                        "as it is (default 5)")
    parser.add_argument("--max-rotated-open", type=int, default=64,
                        help="rotated files held open until shipped, at most (default 64)")
    parser.add_argument("--retry-max", type=float, default=30.0,
                        help="cap of the backoff between retries, seconds (default 30)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    _add_sink_options(parser)


def _add_sink_options(parser: argparse.ArgumentParser) -> None:
    from shipper.pipeline import SINKS

    for module in dict.fromkeys(spec.partition(":")[0] for spec in SINKS.values()):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # that sink is not written/installed yet
            raise
        hook = getattr(mod, "add_arguments", None)
        if hook is not None:
            hook(parser)


def build_sinks(args: argparse.Namespace) -> list:
    from shipper.pipeline import SINKS, sink_class
    from shipper.sinks.base import SinkError

    if not args.sink:
        raise CliError("no --sink given (e.g. --sink file=- or --sink loki=http://...)")
    sinks = []
    for spec in args.sink:
        kind, sep, url = spec.partition("=")
        kind = kind.strip()
        if kind not in SINKS:
            raise CliError(f"--sink {spec!r}: unknown kind {kind!r} (known: {', '.join(SINKS)})")
        try:
            sinks.append(sink_class(kind).from_args(url.strip(), args))
        except SinkError as exc:
            raise CliError(f"--sink {spec!r}: {exc.reason}") from None
    names = [s.name for s in sinks]
    for i, s in enumerate(sinks):  # two sinks of one kind: tell them apart in metrics
        if names.count(s.name) > 1:
            s.name = f"{s.name}-{i}"
    return sinks


async def _run(args: argparse.Namespace) -> int:
    from formats.delivery import Backoff
    from formats.labels import LabelWhitelist, split_patterns
    from shipper.enrich import MetadataCache
    from shipper.metrics import serve
    from shipper.pipeline import PipelineOptions, Shipper
    from shipper.sources.checkpoint import Registry, RegistryError
    from shipper.sources.paths import Discovery
    from shipper.sources.reader import Reader, ReaderOptions

    try:
        multiline = re.compile(args.multiline_start) if args.multiline_start else None
    except re.error as exc:
        raise CliError(f"--multiline-start {args.multiline_start!r}: {exc}") from None
    labels = split_patterns(args.label_whitelist)
    sinks = build_sinks(args)
    registry = Registry(args.registry)
    try:
        registry.load()
    except RegistryError as exc:
        raise CliError(str(exc)) from None
    os.makedirs(os.path.dirname(os.path.abspath(args.registry)), exist_ok=True)
    discovery = Discovery(args.root or list(DEFAULT_ROOTS), args.path)
    reader = Reader(discovery, registry, MetadataCache(LabelWhitelist(labels)), ReaderOptions(
        host=args.host, max_line_bytes=args.max_line_bytes, multiline=multiline,
        flush_timeout=args.partial_flush, poll_interval=args.poll_interval,
        max_rotated_open=args.max_rotated_open))
    shipper = Shipper(reader, sinks, registry, PipelineOptions(
        max_buffer_bytes=args.max_buffer_bytes, max_batch_bytes=args.batch_bytes,
        rescan_interval=args.rescan_interval, backoff=Backoff(0.5, args.retry_max)))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shipper.stop)
    runner = None
    if args.listen != "none":
        try:
            runner = await serve(shipper, args.listen)
        except (OSError, ValueError) as exc:
            raise CliError(f"--listen {args.listen!r}: {exc}") from None
    discovery.watch(shipper.notify)
    log.info("shipping %s to %s", ", ".join(discovery.roots + discovery.globs),
             ", ".join(s.name for s in sinks))
    try:
        await shipper.run()
    finally:
        discovery.close()
        reader.close()
        if runner is not None:
            await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    """Ship until SIGTERM/SIGINT; 0 on a clean stop, 2 for unusable options."""
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s shipper %(levelname)s %(message)s")
    logging.getLogger("watchdog").setLevel(logging.WARNING)
    if args.host is None:
        args.host = socket.gethostname()
    # Records live until acknowledged: lots of young tuples that all survive a gen-0
    # collection. Collect rarely (there are no reference cycles on the hot path).
    gc.set_threshold(100_000, 50, 100)
    gc.freeze()
    try:
        return asyncio.run(_run(args))
    except CliError as exc:
        print(f"boxwatch shipper: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None, prog: str = "boxwatch shipper") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
