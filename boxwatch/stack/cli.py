"""``boxwatch up``, ``boxwatch down`` and ``boxwatch status``: flags to configuration to
:mod:`boxwatch.stack.control`. Errors are one line on stderr and exit code 1 (2 for a
bad configuration)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from boxwatch import config
from boxwatch.config import ConfigError
from boxwatch.stack import control
from boxwatch.stack.control import StackError

STACK_SECTIONS = ("", "influxdb", "collector", "shipper", "prometheus", "alertmanager",
                  "web")


def _run(prog: str, argv: Sequence[str] | None, description: str, sections: Sequence[str],
         body: Callable[[argparse.Namespace, config.Config], int],
         extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if extra is not None:
        extra(parser)
    config.add_flags(parser, sections)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cfg = config.load(args)
        return body(args, cfg)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


def up_main(argv: Sequence[str] | None = None, prog: str = "boxwatch up") -> int:
    return _run(prog, argv, "Start the local stack (InfluxDB, collector, shipper, Prometheus, "
                "Alertmanager, the web UI) in the background and wait until it is healthy.",
                STACK_SECTIONS, lambda args, cfg: control.up(cfg))


def down_main(argv: Sequence[str] | None = None, prog: str = "boxwatch down") -> int:
    return _run(prog, argv, "Stop the local stack: every process it started.", ("",),
                lambda args, cfg: control.down(cfg.state_dir))


def status_main(argv: Sequence[str] | None = None, prog: str = "boxwatch status") -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON")

    return _run(prog, argv, "Show each part of the local stack: pid, port, health. Exit "
                "code 0 all healthy, 1 some not, 3 not running.", ("",),
                lambda args, cfg: control.status(cfg.state_dir, as_json=args.json), extra)
