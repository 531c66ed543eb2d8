"""``boxwatch logs``: flags to a :class:`LogQuery`, the configured store, and lines printed
as ``docker logs -t`` prints them with the container's name in front (coloured per
container on a terminal). ``-f`` polls for entries newer than the last one printed."""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections.abc import Sequence
from typing import TextIO

from boxwatch import config
from boxwatch.config import Config, ConfigError
from boxwatch.logs.query import (
    LogEntry,
    LogQuery,
    LogStore,
    LogStoreError,
    Match,
    QueryError,
    parse_time,
    rfc3339,
)
from boxwatch.stack.credentials import credentials_path
from boxwatch.stack.plan import probe_host
from formats.influx import read_credentials

COLOURS = (32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)


def influx_credentials(cfg: Config) -> tuple[str, str] | None:
    """(user, password) from ``logs.credentials``, else, for the local stack (no
    ``logs.url``), from its credentials file when there is one; ConfigError naming the
    file (never its content) when it cannot be read."""
    path = cfg["logs.credentials"]
    if not path and not cfg["logs.url"]:
        local = credentials_path(cfg.state_dir)
        try:
            local.lstat()
        except FileNotFoundError:
            return None  # no local stack, or one without auth: ask without credentials
        except OSError:
            pass  # e.g. a private state dir of another user: read_credentials says so
        path = str(local)
    if not path:
        return None
    try:
        return read_credentials(path)
    except ValueError as exc:
        raise ConfigError(f"{exc} (logs.credentials: --logs-credentials, "
                          "BOXWATCH_LOGS_CREDENTIALS or [logs] credentials)") from None


def store_from_config(cfg: Config) -> LogStore:
    """The store ``[logs]`` names; the local stack's InfluxDB (with the stack's
    credentials) when no URL is given."""
    kind, url = cfg["logs.store"], cfg["logs.url"]
    token, user, password = cfg["logs.token"], cfg["logs.username"], cfg["logs.password"]
    if kind == "influxdb":
        from boxwatch.logs.influx import InfluxLogs

        if not url:
            url = f"http://{probe_host(cfg['listen_host'])}:{cfg['influxdb.port']}"
        creds = None if token else influx_credentials(cfg)
        if creds:
            user, password = creds
        return InfluxLogs(url, cfg["logs.database"] or cfg["influxdb.logs_db"], token, user,
                          password)
    if not url:
        raise ConfigError(f"logs.url is required for logs.store = {kind!r} "
                          "(--logs-url, BOXWATCH_LOGS_URL or [logs] url)")
    if kind == "loki":
        from boxwatch.logs.loki import LokiLogs

        return LokiLogs(url, cfg["logs.tenant"], user, password, token)
    from boxwatch.logs.elasticsearch import ElasticsearchLogs

    return ElasticsearchLogs(url, cfg["logs.index"], token, user, password)


def build_query(args: argparse.Namespace, now_ns: int | None = None) -> LogQuery:
    now_ns = time.time_ns() if now_ns is None else now_ns
    if args.follow and args.until:
        raise QueryError("--until cannot be combined with -f", args.until)
    if args.limit < 0:
        raise QueryError("--limit must be >= 0", args.limit)
    return LogQuery(
        container=Match.parse(args.container, "--container") if args.container else None,
        host=Match.parse(args.host, "--host") if args.host else None,
        stream=args.stream,
        since_ns=parse_time(args.since, now_ns) if args.since not in ("", "all") else None,
        until_ns=parse_time(args.until, now_ns) if args.until else None,
        grep=Match.parse(args.grep, "--grep").text if args.grep else None,
        limit=args.limit)


# C0 controls but tab, DEL and the C1 range: what a terminal acts on (ESC sequences can
# retitle it, move the cursor, rewrite lines already shown or, on some, answer back).
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F,
                                        *range(0x80, 0xA0)]}


def printable(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` instead of sent to the
    terminal: log lines are written by containers, i.e. by whoever runs in them."""
    return text.translate(_CONTROL)


class Printer:
    """``NAME | 2024-05-01T10:00:00.123456789Z message``; ``host/NAME`` once entries of
    more than one host were seen; names padded to the widest so far."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.hosts: set[str] = set()
        self.width = 0

    def label(self, e: LogEntry) -> str:
        return f"{e.host}/{e.container}" if len(self.hosts) > 1 else e.container

    def print(self, entries: list[LogEntry]) -> None:
        self.hosts.update(e.host for e in entries)
        self.width = max([self.width, *(len(self.label(e)) for e in entries)])
        for e in entries:
            name = printable(self.label(e))
            shown = f"{name:<{self.width}}"
            if self.colour:
                shown = f"\033[{COLOURS[zlib.crc32(name.encode()) % len(COLOURS)]}m{shown}\033[0m"
            self.out.write(f"{shown} | {rfc3339(e.time_ns)} {printable(e.message)}\n")
        self.out.flush()


def follow(store: LogStore, q: LogQuery, printer: Printer, last: list[LogEntry],
           interval: float, stop_after: float | None = None) -> None:
    """Poll for entries at or after the newest one printed, skipping those already shown."""
    seen = {e for e in last if e.time_ns == last[-1].time_ns} if last else set()
    since = last[-1].time_ns if last else (q.since_ns or time.time_ns())
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        time.sleep(interval)
        batch = store.search(LogQuery(q.container, q.host, q.stream, since, None, q.grep,
                                      limit=0 if q.limit == 0 else max(q.limit, 5000)))
        fresh = [e for e in batch if e not in seen]
        if fresh:
            printer.print(fresh)
            since = fresh[-1].time_ns
            seen = {e for e in batch if e.time_ns == since}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--container", "-c", metavar="NAME|REGEX",
                        help="container name, or a regex matching the whole name")
    parser.add_argument("--host", metavar="NAME|REGEX", help="node name (or regex)")
    parser.add_argument("--stream", choices=("stdout", "stderr"))
    parser.add_argument("--since", default="1h",
                        help="start: duration back (30m, 2d), RFC 3339 time or unix seconds; "
                             "'all' for no bound (default 1h)")
    parser.add_argument("--until", default="", help="end (same forms as --since)")
    parser.add_argument("--grep", "-g", metavar="REGEX", help="lines matching REGEX")
    parser.add_argument("--limit", "-n", type=int, default=1000,
                        help="the newest N entries (default 1000; 0 = all)")
    parser.add_argument("--follow", "-f", action="store_true", help="follow new entries")
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def main(argv: Sequence[str] | None = None, prog: str = "boxwatch logs") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Search container logs in the "
                                     "central store (InfluxDB, Loki or Elasticsearch).")
    add_arguments(parser)
    config.add_flags(parser, ("logs",))
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty()
                                        and not os.environ.get("NO_COLOR"))
    try:
        cfg = config.load(args)
        store = store_from_config(cfg)
        q = build_query(args)
        entries = store.search(q)
        printer = Printer(sys.stdout, colour)
        printer.print(entries)
        if args.follow:
            follow(store, q, printer, entries, args.interval)
    except (ConfigError, QueryError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except LogStoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    return 0
