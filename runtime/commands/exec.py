"""``box exec``: a new process in a running container's namespaces and cgroup, with
its environment, user and capabilities, and docker's exit codes (126/127 included)."""

from __future__ import annotations

import os
import selectors

from runtime.create import parse_env_files
from runtime.errors import BoxError, Conflict
from runtime.flags import REMAINDER, FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store, is_running


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
    from runtime.enter import Process, spawn
    from runtime.spec import sandbox_spec, seccomp_program

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
    privileged = bool(host.get("Privileged") or args.privileged)
    caps = effective_set(host.get("CapAdd") or [], host.get("CapDrop") or [], privileged)
    proc = Process(list(args.command), env, args.user if args.user is not None else spec.user,
                   args.workdir or spec.cwd, caps, privileged, bool(args.tty),
                   seccomp_program(paths, host, caps), spec.no_new_privs)
    master = slave = null = None
    if args.tty:
        master, slave = os.openpty()
        stdio: tuple[int | None, int | None, int | None] = (slave, slave, slave)
    elif args.detach:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        stdio = (null, null, null)
    elif not args.interactive:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        stdio = (null, None, None)
    else:
        stdio = (None, None, None)
    try:
        child, err_r = spawn(cfg, proc, stdio, "detach" if args.detach else "relay")
    finally:
        for fd in (slave, null):
            if fd is not None:
                os.close(fd)
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
