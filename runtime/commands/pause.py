"""``box pause`` / ``box unpause``: each container in turn, docker's messages for one
that cannot be (not running, already paused, not paused), the others go on."""

from __future__ import annotations

import sys

from runtime.errors import BoxError
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths


def add_pause(p: FlagParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def add_unpause(p: FlagParser) -> None:
    add_pause(p)


def _each(paths: Paths, refs: list[str], paused: bool) -> int:
    from runtime.pause import set_paused
    from runtime.state import Store

    store = Store(paths)
    status = 0
    for ref in refs:
        try:
            set_paused(store, store.resolve(ref), paused)
            print(ref)
        except BoxError as e:
            print(f"box: Error response from daemon: {e}", file=sys.stderr)
            status = 1
    return status


def cmd_pause(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, True)


def cmd_unpause(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, False)
