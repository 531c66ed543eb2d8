"""``box run``, ``box create``, ``box start``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

from runtime.containers import Containers, StatusReader, monitor_log_tail
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
    a("--help", action="help", help="Print usage")  # -h is --hostname, as in docker
    a("--rm", action="store_true")
    a("-i", "--interactive", action="store_true")
    a("-t", "--tty", action="store_true")
    a("-l", "--label", action="append", default=[])
    a("--entrypoint")
    a("--restart")
    a("-m", "--memory", metavar="bytes")
    a("--memory-swap", metavar="bytes")
    a("--memory-reservation", metavar="bytes")
    a("--oom-kill-disable", action="store_true")
    a("--cpus", metavar="decimal")
    a("-c", "--cpu-shares", metavar="int")
    a("--cpu-period", metavar="int")
    a("--cpu-quota", metavar="int")
    a("--cpuset-cpus")
    a("--cpuset-mems")
    a("--pids-limit", metavar="int")
    a("--blkio-weight", metavar="uint16")
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
    a("--cgroupns")
    a("--privileged", action="store_true")
    a("--security-opt", action="append", default=[])
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--stop-signal")
    a("--stop-timeout", type=int)
    a("--shm-size", metavar="bytes")
    a("--health-cmd")
    a("--health-interval", metavar="duration")
    a("--health-timeout", metavar="duration")
    a("--health-retries", metavar="int")
    a("--health-start-period", metavar="duration")
    a("--health-start-interval", metavar="duration")
    a("--no-healthcheck", action="store_true")
    a("image", metavar="IMAGE")
    a("command", nargs=REMAINDER, metavar="COMMAND")


def add_run(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true")
    _add_create_flags(p)


def add_create(p: FlagParser) -> None:
    p.set_defaults(detach=True)
    _add_create_flags(p)


def add_start(p: FlagParser) -> None:
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def cmd_create(paths: Paths, args: Namespace) -> int:
    from runtime.create import create

    cfg = create(paths, args)
    print(cfg["ID"])
    return 0


def cmd_run(paths: Paths, args: Namespace) -> int:
    from runtime.cgroups import warm_migration_lock
    from runtime.create import create
    from runtime.prelaunch import EarlyMonitor

    warmer = warm_migration_lock()  # stopped once the container has started
    attached = not args.detach
    # Imports the monitor's modules on the other core while we create the container.
    early = EarlyMonitor(paths, attached, args.interactive)
    try:
        cfg = create(paths, args)
    except BaseException:
        early.cancel()
        warmer.stop()
        raise
    cid = cfg["ID"]
    containers = Containers(paths)
    if attached:  # docker's CLI attaches before it starts: create, attach, start
        from runtime.journal import container_event

        container_event(paths.root, cfg, "attach")
    try:
        pid, monitor, status = containers.start(cid, attached=attached,
                                                interactive=args.interactive,
                                                fork_monitor=early.launch)
    except BoxError:
        early.cancel()
        warmer.stop()
        if args.rm:
            with contextlib.suppress(BoxError):
                containers.remove(cid, force=True)
        raise
    early.cancel()  # unused when another command's monitor runs the container
    warmer.stop()
    if not attached or status is None:
        if status is not None:
            status.close()
        print(cid)
        return 0
    return _wait_attached(pid, status, tty=args.tty and args.interactive, monitor=monitor,
                          monitor_log=lambda: monitor_log_tail(paths, cid))


def cmd_start(paths: Paths, args: Namespace) -> int:
    store = Store(paths)
    containers = Containers(paths)
    failed = 0
    for ref in args.containers:
        try:
            cid = store.resolve(ref)
            cfg = store.load(cid)
            attached = args.attach or args.interactive
            if attached:
                from runtime.journal import container_event

                container_event(paths.root, cfg, "attach")  # docker: attach, then start
            pid, monitor, status = containers.start(cid, attached=attached,
                                                    interactive=args.interactive)
        except BoxError as e:
            print(f"box: {e}", file=sys.stderr)
            failed = 1
            continue
        if attached and status is None:  # running already: docker's start -a attaches
            from runtime.commands.attach import DEFAULT_DETACH_KEYS, attach, parse_detach_keys

            return attach(paths, cid, parse_detach_keys(DEFAULT_DETACH_KEYS),
                          no_stdin=not args.interactive, journal=False)
        if attached and status is not None:
            return _wait_attached(pid, status, tty=cfg["Config"].get("Tty") and args.interactive,
                                  monitor=monitor,
                                  monitor_log=lambda c=cid: monitor_log_tail(paths, c))
        if status is not None:
            status.close()
        print(ref)
    return failed


def _wait_attached(pid: int, reader: StatusReader, tty: bool, monitor: int = 0,
                   monitor_log: Callable[[], str] = lambda: "") -> int:
    """Like ``docker run`` in the foreground: the monitor copies the output to our
    stdout/stderr; we relay signals (sig-proxy) and wait for the exit code.

    A failure of the monitor after the start (an ``error`` line) is printed, and so is
    a status pipe that ends without an exit code: a 125 always comes with its cause."""
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
        code, errors = 125, []
        while True:
            kind, rest = reader.next()
            if kind == "exit":
                code = int(rest) if rest.lstrip("-").isdigit() else 125
                break
            if kind == "error":  # the monitor failed after the start: say why
                errors.append(rest.partition(" ")[2] or "the container's monitor failed")
            if kind == "eof":
                errors.append(_monitor_end(monitor) + monitor_log())
                break
        reader.close()
        if errors and code == 125 or kind == "eof":
            if restore is not None:  # the message must not land on a raw terminal
                import termios

                termios.tcsetattr(0, termios.TCSADRAIN, restore)
                restore = None
            print(f"box: {errors[0]}", file=sys.stderr)
        return code
    finally:
        if restore is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, restore)


def _monitor_end(monitor: int) -> str:
    """Why the status pipe closed without an exit code: how the monitor (our child)
    ended."""
    how = "ended"
    if monitor:
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(monitor, 0)
            if os.WIFSIGNALED(status):
                how = f"was killed by signal {os.WTERMSIG(status)}"
            elif os.WIFEXITED(status):
                how = f"exited with status {os.WEXITSTATUS(status)}"
    return f"the container's monitor {how} without reporting the exit code"
