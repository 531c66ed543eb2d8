"""``box run``, ``box create``, ``box start``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from runtime.containers import Containers, StatusReader
from runtime.errors import BoxError
from runtime.flags import REMAINDER, FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store


def _add_create_flags(p: FlagParser) -> None:
    a = p.add_argument
    a("--name")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-w", "--workdir")
    a("-u", "--user")
    a("-h", "--hostname")
    a("--help", action="help", help="show this help")  # -h is --hostname, as in docker
    a("--rm", action="store_true")
    a("-i", "--interactive", action="store_true")
    a("-t", "--tty", action="store_true")
    a("-l", "--label", action="append", default=[])
    a("--entrypoint")
    a("--restart")
    a("-m", "--memory")
    a("--memory-swap")
    a("--memory-reservation")
    a("--oom-kill-disable", action="store_true")
    a("--cpus")
    a("-c", "--cpu-shares")
    a("--cpu-period")
    a("--cpu-quota")
    a("--cpuset-cpus")
    a("--cpuset-mems")
    a("--pids-limit")
    a("--blkio-weight")
    a("--device", action="append", default=[])
    a("--device-read-bps", action="append", default=[])
    a("--device-write-bps", action="append", default=[])
    a("--device-read-iops", action="append", default=[])
    a("--device-write-iops", action="append", default=[])
    a("--log-driver", default="json-file")
    a("--log-opt", action="append", default=[])
    a("--network", "--net")
    a("-p", "--publish", action="append", default=[])
    a("-P", "--publish-all", action="store_true")
    a("--expose", action="append", default=[])
    a("--ip")
    a("--network-alias", "--net-alias", action="append", default=[])
    a("--link", action="append", default=[])
    a("--dns", action="append", default=[])
    a("--dns-search", action="append", default=[])
    a("--dns-option", "--dns-opt", action="append", default=[])
    a("--add-host", action="append", default=[])
    a("-v", "--volume", action="append", default=[])
    a("--mount", action="append", default=[])
    a("--tmpfs", action="append", default=[])
    a("--read-only", action="store_true")
    a("--init", action="store_true")
    a("--privileged", action="store_true")
    a("--security-opt", action="append", default=[])
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("--shm-size")
    a("--health-cmd")
    a("--health-interval")
    a("--health-timeout")
    a("--health-retries")
    a("--health-start-period")
    a("--health-start-interval")
    a("--no-healthcheck", action="store_true")
    a("image")
    a("command", nargs=REMAINDER)


def add_run(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true")
    _add_create_flags(p)


def add_create(p: FlagParser) -> None:
    p.set_defaults(detach=True)
    _add_create_flags(p)


def add_start(p: FlagParser) -> None:
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("containers", nargs="+")


def cmd_create(paths: Paths, args: Namespace) -> int:
    from runtime.create import create

    cfg = create(paths, args)
    print(cfg["ID"])
    return 0


def cmd_run(paths: Paths, args: Namespace) -> int:
    from runtime.cgroups import warm_migration_lock
    from runtime.create import create

    warmer = warm_migration_lock()  # reaped once the container has started
    cfg = create(paths, args)
    cid = cfg["ID"]
    containers = Containers(paths)
    attached = not args.detach
    try:
        pid, _mon, status_fd = containers.start(cid, attached=attached,
                                                interactive=args.interactive)
    except BoxError:
        os.waitpid(warmer, 0)
        if args.rm:
            with contextlib.suppress(BoxError):
                containers.remove(cid, force=True)
        raise
    os.waitpid(warmer, 0)
    if not attached:
        os.close(status_fd)
        print(cid)
        return 0
    return _wait_attached(pid, status_fd, tty=args.tty and args.interactive)


def cmd_start(paths: Paths, args: Namespace) -> int:
    store = Store(paths)
    containers = Containers(paths)
    failed = 0
    for ref in args.containers:
        try:
            cid = store.resolve(ref)
            cfg = store.load(cid)
            attached = args.attach or args.interactive
            pid, _mon, status_fd = containers.start(cid, attached=attached,
                                                    interactive=args.interactive)
        except BoxError as e:
            print(f"box: {e}", file=sys.stderr)
            failed = 1
            continue
        if attached:
            return _wait_attached(pid, status_fd, tty=cfg["Config"].get("Tty") and args.interactive)
        if status_fd >= 0:
            os.close(status_fd)
        print(ref)
    return failed


def _wait_attached(pid: int, status_fd: int, tty: bool) -> int:
    """Like ``docker run`` in the foreground: the monitor copies the output to our
    stdout/stderr; we relay signals (sig-proxy) and wait for the exit code."""
    def proxy(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            if pid:
                os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, proxy)
    restore = None
    if tty and os.isatty(0):
        import termios
        import tty as ttymod

        restore = termios.tcgetattr(0)
        ttymod.setraw(0)
    try:
        reader = StatusReader(status_fd)
        code = 125
        while True:
            kind, rest = reader.next()
            if kind == "exit":
                code = int(rest)
                break
            if kind == "eof":
                break
        os.close(status_fd)
        return code
    finally:
        if restore is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, restore)
