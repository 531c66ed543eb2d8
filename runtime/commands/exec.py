"""``box exec``: a new process in a running container's namespaces and cgroup, with
its environment, user and capabilities, and docker's exit codes (126/127 included)."""

from __future__ import annotations

import os
import selectors
import signal
from typing import Any

from runtime.create import parse_env_files
from runtime.errors import BoxError, Conflict
from runtime.flags import REMAINDER, FlagParser, Namespace
from runtime.journal import container_event
from runtime.paths import Paths
from runtime.state import Store, is_running
from runtime.stdio import copy_winsize, write_to_reader


def add_exec(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Detached mode: run command in the background")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=REMAINDER, metavar="COMMAND")


def cmd_exec(paths: Paths, args: Namespace) -> int:
    from runtime.caps import effective_set
    from runtime.enter import Process, spawn
    from runtime.spec import sandbox_spec, seccomp_program

    if not args.command:
        raise BoxError("exec needs a command to run")
    store = Store(paths)
    cid = store.resolve(args.container)
    cfg = store.load(cid)
    if cfg["State"].get("Status") == "paused" and is_running(cfg):
        raise Conflict(f"Container {cid} is paused, unpause the container before exec")
    if not is_running(cfg) or cfg["State"].get("Status") != "running":
        raise Conflict(f"container {cid} is not running")
    spec = sandbox_spec(paths, cfg)
    env = [e for e in spec.env]
    extra = parse_env_files(args.env_file) + [e for e in args.env if "=" in e]
    keys = {e.split("=", 1)[0] for e in extra}
    env = [e for e in env if e.split("=", 1)[0] not in keys] + extra
    caps, seccomp = spec.caps, spec.seccomp  # the container's own, from sandbox_spec
    privileged = spec.privileged or bool(args.privileged)
    if privileged and not spec.privileged:  # exec --privileged: every capability
        host = cfg["HostConfig"]
        caps = effective_set(host.get("CapAdd") or [], host.get("CapDrop") or [], True)
        seccomp = seccomp_program(paths, host, caps)
    proc = Process(list(args.command), env, args.user if args.user is not None else spec.user,
                   args.workdir or spec.cwd, caps, privileged, bool(args.tty), seccomp,
                   spec.no_new_privs)
    exec_id = os.urandom(32).hex()  # moby's stringid.GenerateRandomID
    label = f"{proc.args[0]} {' '.join(proc.args[1:])}"  # moby: Entrypoint + " " + Args
    container_event(paths.root, cfg, f"exec_create: {label}", execID=exec_id)
    container_event(paths.root, cfg, f"exec_start: {label}", execID=exec_id)
    if args.detach and not args.tty:
        return _detached(paths.root, cfg, proc, exec_id)
    master = slave = null = None
    pipes: _Pipes | None = None
    if args.tty:
        master, slave = os.openpty()
        if args.interactive:  # the caller's pane size before the command draws anything
            copy_winsize(0, master)
        stdio: tuple[int | None, int | None, int | None] = (slave, slave, slave)
    else:
        # Pipes that box owns, never our own fds: a terminal handed to the container
        # could be typed into (TIOCSTI) or reconfigured from inside.
        pipes = _Pipes(args.interactive)
        stdio = pipes.child_ends
    try:
        child, err_r = spawn(cfg, proc, stdio, "detach" if args.detach else "relay")
    finally:
        for fd in (slave, null):
            if fd is not None:
                os.close(fd)
    if master is not None:
        status = _relay_tty(master, args.interactive)
    elif pipes is not None:
        pipes.close_child_ends()
        status = pipes.relay(child)
    else:
        status = None
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
    code = code if code >= 0 else 128 - code
    if not args.detach:  # a detached -t exec's end is not ours to see
        container_event(paths.root, cfg, "exec_die", execID=exec_id, exitCode=code)
    return code


def _detached(root: str, cfg: dict, proc: Any, exec_id: str) -> int:
    """``exec -d``: a host-side waiter (its own session, stdio on /dev/null) spawns the
    command, hands the spawn's outcome back to us and stays to journal ``exec_die``
    when the command ends, as moby's monitor does; we return at once. Host-side
    because the spawn's helper joins the container's mount namespace, where the
    journal is not."""
    from runtime.enter import spawn

    res_r, res_w = os.pipe2(os.O_CLOEXEC)
    waiter = os.fork()
    if waiter == 0:
        try:
            os.close(res_r)
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            child, err_r = spawn(cfg, proc, (null, null, null), "relay")
            failure = b""
            while chunk := os.read(err_r, 4096):
                failure += chunk
            os.write(res_w, failure or b"0")
            os.close(res_w)
            _, status = os.waitpid(child, 0)
            if not failure:
                code = os.waitstatus_to_exitcode(status)
                container_event(root, cfg, "exec_die", execID=exec_id,
                                exitCode=code if code >= 0 else 128 - code)
        finally:
            os._exit(0)
    os.close(res_w)
    result = b""
    while chunk := os.read(res_r, 4096):
        result += chunk
    os.close(res_r)
    if result != b"0":
        code_s, _, message = result.decode(errors="replace").partition("\n")
        raise BoxError(message or "exec failed", int(code_s) if code_s.isdigit() else 125)
    return 0


class _Pipes:
    """stdin (``-i``; else /dev/null), stdout and stderr of an exec as pipes, copied
    to and from ours by ``relay`` until the command exits and its output is drained."""

    DRAIN_SECONDS = 2.0

    def __init__(self, interactive: bool) -> None:
        self.out_r, self.out_w = os.pipe2(os.O_CLOEXEC)
        self.err_r, self.err_w = os.pipe2(os.O_CLOEXEC)
        if interactive:
            self.in_r, self.in_w = os.pipe2(os.O_CLOEXEC)
        else:
            self.in_r, self.in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
        self.child_ends: tuple[int | None, int | None, int | None] = (
            self.in_r, self.out_w, self.err_w)

    def close_child_ends(self) -> None:
        for fd in (self.in_r, self.out_w, self.err_w):
            os.close(fd)

    def relay(self, child: int) -> int:
        """Copy until the helper (our child) exits and the pipes drain; its status."""
        import time

        sel = selectors.DefaultSelector()
        targets = {self.out_r: 1, self.err_r: 2}
        for fd in targets:
            sel.register(fd, selectors.EVENT_READ)
        if self.in_w != -1:
            sel.register(0, selectors.EVENT_READ)
        pidfd = os.pidfd_open(child)
        sel.register(pidfd, selectors.EVENT_READ)
        status = None
        deadline = None
        try:
            while targets and (deadline is None or time.monotonic() < deadline):
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                for key, _ in sel.select(timeout):
                    if key.fd == pidfd:
                        _, status = os.waitpid(child, 0)
                        sel.unregister(pidfd)
                        deadline = time.monotonic() + self.DRAIN_SECONDS
                    elif key.fd == 0:
                        self._copy_stdin(sel)
                    else:
                        data = os.read(key.fd, 65536)
                        if data:
                            write_to_reader(targets[key.fd], data)
                        else:
                            sel.unregister(key.fd)
                            del targets[key.fd]
            if status is None:
                _, status = os.waitpid(child, 0)
        finally:
            sel.close()
            for fd in (self.out_r, self.err_r, pidfd, self.in_w):
                if fd != -1:
                    os.close(fd)
            self.in_w = -1
        return status

    def _copy_stdin(self, sel: selectors.BaseSelector) -> None:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        try:
            if data:
                write_to_reader(self.in_w, data)
                return
        except OSError:
            pass  # the command closed its stdin: stop copying
        sel.unregister(0)
        os.close(self.in_w)
        self.in_w = -1


def _relay_tty(master: int, interactive: bool) -> int | None:
    """Copy between our terminal and the exec's pty until it closes."""
    import termios
    import tty

    restore = None
    if interactive and os.isatty(0):
        restore = termios.tcgetattr(0)
        tty.setraw(0)
        # a resized terminal (or web console pane) resizes the exec's pty too
        signal.signal(signal.SIGWINCH, lambda *_: copy_winsize(0, master))
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
