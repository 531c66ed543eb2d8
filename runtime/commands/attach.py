"""``box attach``: follow a running container's output until it exits, and exit with
its code, as ``docker attach`` does.

box has no daemon holding a container's stdio: the monitor owns the pipes (or the pty
master) and writes everything to the json-file log, and a detached container's stdin is
``/dev/null`` (or, with ``-d -i``, a pipe only the monitor holds). So ``attach``
streams the output from the log from the moment it attaches (stdout to stdout, stderr
to stderr; nothing older, as docker without ``--logs``) and cannot write to the
container's stdin: docker's behaviour with ``--no-stdin``. With ``--sig-proxy`` (the
default) SIGINT/SIGTERM/... reach the container's PID 1. On a terminal the detach
keys (docker's ``ctrl-p,ctrl-q``, or ``--detach-keys``) leave without stopping it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from runtime.errors import BoxError, Conflict, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def add_attach(p: FlagParser) -> None:
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", action="store_true", default=True,
                   help="Proxy all received signals to the process")
    p.add_argument("container", metavar="CONTAINER")


def parse_detach_keys(text: str) -> bytes:
    """docker's ``--detach-keys``: comma-separated ``ctrl-<x>`` or single characters."""
    out = bytearray()
    for part in text.split(","):
        key = part.strip().lower()
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6 and (key[5].isalpha()
                                                            or key[5] in "@[\\]^_"):
            out.append(ord(key[5].upper()) & 0x1F)
        else:
            raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    return bytes(out)


class _DetachWatch:
    """Reads the client's terminal (cbreak, no echo) for the detach sequence; the keys
    go nowhere else (the container's stdin cannot be reached, see the module doc)."""

    def __init__(self, keys: bytes) -> None:
        import termios
        import tty

        self.keys, self.seen = keys, b""
        self.saved = termios.tcgetattr(0)
        tty.setcbreak(0)  # ctrl-c still interrupts (and reaches the container: sig-proxy)
        mode = termios.tcgetattr(0)
        mode[0] &= ~termios.IXON  # ctrl-q/ctrl-s are keys here, not flow control
        termios.tcsetattr(0, termios.TCSANOW, mode)

    def detached(self) -> bool:
        import select

        while select.select([0], [], [], 0)[0]:
            byte = os.read(0, 1)
            if not byte:
                return False
            self.seen = (self.seen + byte)[-len(self.keys):]
            if self.seen == self.keys:
                return True
        return False

    def restore(self) -> None:
        import termios

        termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def cmd_attach(paths: Paths, args: Namespace) -> int:
    from runtime.logging.reader import follow
    from runtime.state import Store, effective_state

    keys = parse_detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS)
    store = Store(paths)
    cid = store.resolve(args.container)
    cfg = store.load(cid)
    state = effective_state(cfg)
    if state.get("Paused") or state["Status"] == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if state["Status"] not in ("running", "restarting"):
        raise Conflict("You cannot attach to a stopped container, start it first")
    if args.sig_proxy and not cfg["Config"].get("Tty"):
        _proxy_signals(store, cid)
    watch = None
    if not args.no_stdin and os.isatty(0):
        watch = _DetachWatch(keys)
    detached = False

    def stop() -> bool:
        nonlocal detached
        if watch is not None and watch.detached():
            detached = True
            return True
        try:
            return effective_state(store.load(cid))["Status"] not in ("running", "restarting")
        except BoxError:
            return True

    from runtime.journal import container_event

    container_event(paths.root, cfg, "attach")
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for entry in follow(cfg["LogPath"], None, start_at_end=True, stop=stop):
            if detached:
                break
            stream = err if entry.stream == "stderr" else out
            stream.write(entry.log)
            stream.flush()
    finally:
        if watch is not None:
            watch.restore()
    if detached:
        container_event(paths.root, cfg, "detach")
        return 0
    with contextlib.suppress(BoxError):
        return int(effective_state(store.load(cid)).get("ExitCode") or 0)
    return 0


def _proxy_signals(store, cid: str) -> None:
    """docker's sig-proxy: the signals this command gets go to the container's PID 1."""
    def proxy(signum: int, _frame: object) -> None:
        with contextlib.suppress(BoxError, ProcessLookupError, PermissionError):
            pid = int(store.load(cid)["State"].get("Pid") or 0)
            if pid:
                os.kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, proxy)
