"""``box stop``, ``kill``, ``restart``, ``rm``, ``wait``: each takes several containers
and, like docker, reports every failure but goes on with the rest."""

from __future__ import annotations

import sys
from collections.abc import Callable

from runtime.containers import Containers
from runtime.errors import BoxError
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths


def _each(paths: Paths, refs: list[str], action: Callable[[Containers, str], str | None]) -> int:
    containers = Containers(paths)
    status = 0
    for ref in refs:
        try:
            cid = containers.store.resolve(ref)
            out = action(containers, cid)
            print(ref if out is None else out)
        except BoxError as e:
            print(f"box: {e}", file=sys.stderr)
            status = 1
    return status


def add_stop(p: FlagParser) -> None:
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_stop(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, lambda c, cid: c.stop(cid, args.time, args.signal))


def add_restart(p: FlagParser) -> None:
    add_stop(p)


def cmd_restart(paths: Paths, args: Namespace) -> int:
    def restart(c: Containers, cid: str) -> None:
        c.stop(cid, args.time, args.signal)
        c.wait_monitor_gone(cid)
        _pid, _mon, status = c.start(cid)
        if status is not None:
            status.close()
        from runtime.journal import container_event

        container_event(paths.root, c.store.load(cid), "restart")  # docker: after the start
    return _each(paths, args.containers, restart)


def add_kill(p: FlagParser) -> None:
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_kill(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, lambda c, cid: c.kill(cid, args.signal))


def add_rm(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_rm(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, lambda c, cid: c.remove(cid, force=args.force,
                                                                volumes=args.volumes))


def add_wait(p: FlagParser) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_wait(paths: Paths, args: Namespace) -> int:
    return _each(paths, args.containers, lambda c, cid: str(c.wait(cid)))
