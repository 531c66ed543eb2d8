"""``box exec``: a new process in a running container's namespaces and cgroup, with
its environment, user and capabilities, and docker's exit codes (126/127 included)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal

from runtime.containers import is_running
from runtime.create import parse_env_files
from runtime.errors import BoxError, Conflict
from runtime.flags import REMAINDER, FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store


def add_exec(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("container")
    p.add_argument("command", nargs=REMAINDER)


def cmd_exec(paths: Paths, args: Namespace) -> int:
    from runtime.caps import effective_set
    from runtime.cgroups import open_driver
    from runtime.enter import join_namespaces
    from runtime.sandbox import become
    from runtime.spec import sandbox_spec

    if not args.command:
        raise BoxError("exec needs a command to run")
    store = Store(paths)
    cid = store.resolve(args.container)
    cfg = store.load(cid)
    if not is_running(cfg) or cfg["State"].get("Status") != "running":
        raise Conflict(f"container {cid} is not running")
    spec = sandbox_spec(paths, cfg)
    env = [e for e in spec.env]
    extra = parse_env_files(args.env_file) + [e for e in args.env if "=" in e]
    keys = {e.split("=", 1)[0] for e in extra}
    env = [e for e in env if e.split("=", 1)[0] not in keys] + extra
    host = cfg["HostConfig"]
    caps = effective_set(host.get("CapAdd") or [], host.get("CapDrop") or [],
                         bool(host.get("Privileged") or args.privileged))
    box = cfg.get("Box") or {}
    driver = open_driver(version=box.get("CgroupVersion"))
    pid = cfg["State"]["Pid"]
    master = slave = None
    if args.tty:
        master, slave = os.openpty()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        try:
            os.close(err_r)
            driver.attach(box.get("CgroupPaths") or {}, os.getpid())
            join_namespaces(pid)
            grandchild = os.fork()  # only a child enters the joined pid namespace
            if grandchild == 0:
                if slave is not None:
                    for fd in (0, 1, 2):
                        os.dup2(slave, fd)
                elif args.detach or not args.interactive:
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, 0)
                    if args.detach:
                        os.dup2(null, 1)
                        os.dup2(null, 2)
                become(list(args.command), env, args.user if args.user is not None else spec.user,
                       args.workdir or spec.cwd, caps, bool(host.get("Privileged") or args.privileged),
                       args.tty, False, err_w)
            os.close(err_w)
            if args.detach:
                os._exit(0)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda s, _f: os.kill(grandchild, s))
            _, status = os.waitpid(grandchild, 0)
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
        except BaseException as e:  # noqa: BLE001 - forked child
            with contextlib.suppress(OSError):
                os.write(err_w, f"125\n{e}".encode())
            os._exit(125)
    os.close(err_w)
    if slave is not None:
        os.close(slave)
    status = _relay_tty(master, args.interactive) if master is not None else None
    failure = b""
    while chunk := os.read(err_r, 4096):
        failure += chunk
    os.close(err_r)
    if status is None:
        _, status = os.waitpid(child, 0)
    if failure:
        code_s, _, message = failure.decode(errors="replace").partition("\n")
        raise BoxError(message, int(code_s) if code_s.isdigit() else 125)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _relay_tty(master: int, interactive: bool) -> int | None:
    """Copy between our terminal and the exec's pty until it closes."""
    import termios
    import tty

    restore = None
    if interactive and os.isatty(0):
        restore = termios.tcgetattr(0)
        tty.setraw(0)
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    if interactive:
        sel.register(0, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select():
                if key.fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        return None
                    os.write(1, data)
                else:
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                        os.write(master, b"\x04")
                    else:
                        os.write(master, data)
    finally:
        sel.close()
        os.close(master)
        if restore is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, restore)
