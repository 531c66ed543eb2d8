"""``boxwatch web``: flags to :class:`~boxwatch.web.app.Settings` and the server. Bad
flags are one line and exit 2; a port in use is one line and exit 1."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Sequence

from boxwatch.web.auth import AuthConfigError, resolve_token


def parse_args(argv: Sequence[str], prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="The web UI: overview, container "
                                "pages with charts, logs (history into the live tail) and "
                                "an exec console.")
    p.add_argument("--listen", default="127.0.0.1:9200", metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:9200; non-loopback needs a token)")
    p.add_argument("--auth-token", default="", help="token every request must carry "
                   "(visible in ps: prefer --auth-token-file)")
    p.add_argument("--auth-token-file", default="", metavar="PATH",
                   help="file holding the token")
    p.add_argument("--enable-exec", action="store_true",
                   help="offer the exec console (box exec -it) in the container page")
    p.add_argument("--root", action="append", default=None, metavar="DIR",
                   help="container state root (repeatable; default /var/lib/box)")
    p.add_argument("--collector-url", default="http://127.0.0.1:9180")
    p.add_argument("--influx-url", default="http://127.0.0.1:8086")
    p.add_argument("--influx-db", default="boxwatch", help="the collector's metrics database")
    p.add_argument("--logs-db", default="logs", help="the shipper's log database")
    p.add_argument("--influx-credentials", default="", metavar="FILE",
                   help="InfluxDB user and password (netrc form, as `boxwatch up` writes "
                        "them); never on the command line")
    p.add_argument("--alertmanager-url", default="http://127.0.0.1:9093",
                   help="'' when there is no Alertmanager")
    p.add_argument("--host", default="", metavar="NAME",
                   help="this host's name in the store, as the shipper and the collector tag "
                        "it (default: the hostname)")
    p.add_argument("--interval", type=float, default=1.0, help="live update interval (s)")
    return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None, prog: str = "boxwatch web") -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    from formats.influx import read_credentials
    from formats.listen import ListenError, parse_listen

    try:
        host, port = parse_listen(args.listen)
        token = resolve_token(host, args.auth_token, args.auth_token_file)
        user, password = (read_credentials(args.influx_credentials)
                          if args.influx_credentials else ("", ""))
    except (ListenError, AuthConfigError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    from boxwatch.logs.influx import InfluxLogs
    from boxwatch.web.app import Settings, make_app, serve
    from boxwatch.web.sources import Sources
    from formats.delivery import basic_auth

    auth = {"Authorization": basic_auth(user, password)} if user else None
    sources = Sources(args.collector_url, args.influx_url, args.influx_db, args.logs_db,
                      args.alertmanager_url, influx_auth=auth)
    store = (InfluxLogs(args.influx_url, args.logs_db, username=user, password=password,
                        timeout=10) if args.influx_url else None)
    settings = Settings(sources, args.root or ["/var/lib/box"], store, token,
                        args.enable_exec, args.interval, args.host or socket.gethostname())

    async def run() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            if task is not None:
                loop.add_signal_handler(sig, task.cancel)
        await serve(make_app(settings), host, port)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"{prog}: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        pass
    return 0
