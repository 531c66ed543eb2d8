"""The ``boxwatch`` command: one entry point for the collector, the shipper, the local
stack (up/down/status/demo) and log search. Each subcommand is a ``module:function``
taking argv and returning an exit code, imported only when run (so one subcommand's
dependencies never slow or break another)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# name -> ("module:main", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "collector": ("collector.cli:main", "sample container metrics into Prometheus and InfluxDB"),
    "shipper": ("shipper.cli:main", "tail container logs into Loki, Elasticsearch, InfluxDB"),
    "up": ("boxwatch.stack.cli:up_main", "start the local stack in the background"),
    "down": ("boxwatch.stack.cli:down_main", "stop the local stack"),
    "status": ("boxwatch.stack.cli:status_main", "show the local stack's parts and health"),
    "logs": ("boxwatch.logs.cli:main", "search container logs in the central store"),
    "web": ("boxwatch.web.cli:main", "web UI: overview, container pages, logs, exec console"),
    "demo": ("boxwatch.demo.cli:main", "the stack, containers under limits, an alert, queries"),
}


def usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in sorted(SUBCOMMANDS.items())]
    return ("usage: boxwatch COMMAND [OPTIONS]\n\nContainer metrics and logs for box and "
            "Docker hosts.\n\nCommands:\n" + "\n".join(lines)
            + "\n\nRun 'boxwatch COMMAND --help' for a command's options.\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. An exception no subcommand handled becomes one line
    ``boxwatch: internal error: <cause>`` and exit 1 (the traceback with BOX_DEBUG=1)."""
    try:
        return _main(argv)
    except Exception as exc:  # the last line of defence
        import os
        import traceback

        if os.environ.get("BOX_DEBUG", "") not in ("", "0"):
            traceback.print_exception(exc, file=sys.stderr)
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"boxwatch: internal error: {cause} (BOX_DEBUG=1 shows where)", file=sys.stderr)
        return 1


def _main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if args[0] == "--version":
        from boxwatch import __version__

        print(f"boxwatch {__version__}")
        return 0
    name = args.pop(0)
    entry = SUBCOMMANDS.get(name)
    if entry is None:
        sys.stderr.write(f"boxwatch: unknown command {name!r}\n\n" + usage())
        return 2
    module, _, func = entry[0].partition(":")
    return int(getattr(importlib.import_module(module), func)(args, prog=f"boxwatch {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
