"""``box attach``: the container's live output here, our stdin to the container's (for a
container created with ``-i``), until it exits (then exit with its code) or the detach
keys are typed, as ``docker attach`` does.

box has no daemon holding a container's stdio: its monitor owns the pipes (or the pty
master) and serves them on ``attach.sock`` in the container's run dir
(``runtime.attach_server``; the frames are described there). Stdout and stderr stay
apart; nothing older than the attach is shown (docker without ``--logs``). Without
``-i`` at create (``OpenStdin``), or with ``--no-stdin``, stdin is not sent. With
``StdinOnce`` (``box run -i`` without ``-d``) the end of our stdin closes the
container's; otherwise it only ends our input and the next attach can write again.

On a tty container our terminal goes raw (restored on every way out), its size is sent
on connect and on SIGWINCH. The detach keys (docker's ``ctrl-p,ctrl-q``, or
``--detach-keys``) are matched in what we read from stdin and not sent; a prefix that
breaks off is sent as typed. They are matched when the container has a tty or our stdin
is a terminal (a pipe into a non-tty container is passed through byte for byte, as
docker does). With ``--sig-proxy`` (the default, non-tty) our signals reach PID 1.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct

from runtime.attach_server import EXIT, HEADER, RESIZE, SOCK_NAME, STDIN, socket_address
from runtime.errors import BoxError, Conflict, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.stdio import write_to_reader

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


class DetachKeys:
    """docker's escape proxy, byte by byte: the keys typed in order detach; a byte that
    breaks the sequence is sent with the prefix held back, as typed."""

    def __init__(self, keys: bytes) -> None:
        self.keys, self.pos = keys, 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send, detached)."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            out += self.keys[:self.pos]
            self.pos = 0
            out.append(byte)
        return bytes(out), False

    def held(self) -> bytes:
        """A prefix still held back when stdin ends: it was typed, so it is sent."""
        held, self.pos = self.keys[:self.pos], 0
        return held


class _Terminal:
    """Our stdin terminal's mode for the session: raw for a tty container, cbreak (no
    echo, ctrl-c still a signal) when stdin only carries the detach keys; restored
    on every way out."""

    def __init__(self, raw: bool) -> None:
        import termios
        import tty

        self.saved = termios.tcgetattr(0)
        if raw:
            tty.setraw(0, termios.TCSANOW)  # as docker's MakeRaw: typed-ahead keys stay
        else:
            tty.setcbreak(0)
            mode = termios.tcgetattr(0)
            mode[0] &= ~termios.IXON  # ctrl-q/ctrl-s are keys here, not flow control
            mode[3] &= ~termios.ECHO
            termios.tcsetattr(0, termios.TCSANOW, mode)

    def restore(self) -> None:
        import termios

        with contextlib.suppress(OSError):
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


class _Ended(Exception):
    """A terminating signal while our terminal is raw: unwind, restore, exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + signum


def cmd_attach(paths: Paths, args: Namespace) -> int:
    keys = parse_detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS)
    return attach(paths, args.container, keys, args.no_stdin, args.sig_proxy)


def attach(paths: Paths, ref: str, keys: bytes, no_stdin: bool = False,
           sig_proxy: bool = True, journal: bool = True) -> int:
    """Attach to the running container ``ref``; its exit code, or 0 once detached
    (``box start -a`` of a running container comes here too, journaled already)."""
    from runtime.journal import container_event
    from runtime.state import Store, effective_state

    store = Store(paths)
    cid = store.resolve(ref)
    cfg = store.load(cid)
    check_attachable(effective_state(cfg))
    conn = connect(paths, cid, store)
    config = cfg["Config"]
    tty = bool(config.get("Tty"))
    send_stdin = not no_stdin and bool(config.get("OpenStdin"))
    on_terminal = os.isatty(0)
    read_stdin = not no_stdin and (send_stdin or on_terminal)
    if sig_proxy and not tty:
        _proxy_signals(store, cid)
    else:  # ours to end on: unwound, so the terminal is restored
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_ended)
    if journal:
        container_event(paths.root, cfg, "attach")
    term = None
    if read_stdin and on_terminal and (tty or not send_stdin):
        # raw for a tty; cbreak when stdin only carries the detach keys; a non-tty
        # container's stdin keeps our terminal as it is (cooked, echoed: docker's)
        term = _Terminal(raw=tty and send_stdin)
    try:
        result = Session(conn, keys if (tty or on_terminal) else b"", send_stdin,
                         read_stdin, tty).run()
    except _Ended as e:
        result = e.code
    finally:
        conn.close()
        if term is not None:
            term.restore()
    if result == "detached":
        container_event(paths.root, cfg, "detach")
        return 0
    if result == "gone":  # connected as it exited: the state has its code
        with contextlib.suppress(BoxError):
            state = effective_state(store.load(cid))
            if state["Status"] not in ("running", "restarting", "paused"):
                return int(state.get("ExitCode") or 0)
        result = "dropped"
    if result == "dropped":
        raise BoxError(f"attach: the container's monitor dropped this client (it fell "
                       f"behind the output of {cid[:12]}, or the monitor ended)", 1)
    return int(result)


def check_attachable(state: dict) -> None:
    if state.get("Paused") or state["Status"] == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if state["Status"] not in ("running", "restarting"):
        raise Conflict("You cannot attach to a stopped container, start it first")


def connect(paths: Paths, cid: str, store: object) -> socket.socket:
    """A connection to the container's monitor; the run dir is opened without
    following a symlink, and the socket must be a socket owned by root."""
    import stat

    run_dir = paths.run_dir(cid)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.stat(SOCK_NAME, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
                raise PermissionError(f"{run_dir}/{SOCK_NAME} is not the monitor's socket")
            conn.connect(socket_address(dir_fd))
        finally:
            os.close(dir_fd)
    except OSError as e:
        conn.close()
        from runtime.state import effective_state

        with contextlib.suppress(BoxError):
            check_attachable(effective_state(store.load(cid)))  # it ended meanwhile
        raise BoxError(f"container {cid[:12]}: its monitor serves no attach socket "
                       f"({e.strerror or e})", 1) from None
    return conn


class Session:
    """The copy loop: frames from the monitor to our stdout/stderr, our stdin (through
    the detach keys) to the monitor. Never blocks on the socket: input is queued while
    the monitor is not reading, and stdin is not read while the queue is full."""

    def __init__(self, conn: socket.socket, keys: bytes, send_stdin: bool, read_stdin: bool,
                 tty: bool) -> None:
        self.conn = conn
        self.detach = DetachKeys(keys) if keys else None
        self.send_stdin, self.read_stdin, self.tty = send_stdin, read_stdin, tty
        self.outq = bytearray()
        self.inbuf = bytearray()
        self.framed = False  # anything heard from the monitor
        self.sel = selectors.DefaultSelector()

    def run(self) -> int | str:
        conn, sel = self.conn, self.sel
        conn.setblocking(False)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        try:
            sel.register(conn, selectors.EVENT_READ)
            sel.register(wake_r, selectors.EVENT_READ)
            if self.read_stdin:
                sel.register(0, selectors.EVENT_READ)
            if self.tty:
                signal.signal(signal.SIGWINCH, lambda *_: None)  # wakes wake_r
                self._send_winsize()
            while True:
                for key, events in sel.select():
                    if key.fd == wake_r:
                        if signal.SIGWINCH in os.read(wake_r, 64):
                            self._send_winsize()
                    elif key.fd == 0:
                        if self._read_stdin():
                            return "detached"
                    elif events & selectors.EVENT_READ:
                        result = self._read_conn()
                        if result is not None:
                            return result
                    if key.fd != wake_r and events & selectors.EVENT_WRITE:
                        self._flush()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            sel.close()

    def _read_stdin(self) -> bool:
        try:
            data = os.read(0, 65536)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(0)
            self.read_stdin = False
            if self.send_stdin:
                held = self.detach.held() if self.detach else b""
                if held:
                    self._queue(STDIN, held)
                self._queue(STDIN, b"")  # our stdin ended
            return False
        if self.detach is not None:
            data, detached = self.detach.feed(data)
            if detached:
                return True
        if self.send_stdin and data:
            self._queue(STDIN, data)
        return False

    def _read_conn(self) -> int | str | None:
        try:
            data = self.conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:  # no exit frame: dropped (or the monitor ended before serving us)
            return "dropped" if self.framed else "gone"
        self.framed = True
        self.inbuf += data
        while len(self.inbuf) >= HEADER.size:
            kind, size = HEADER.unpack_from(self.inbuf)
            if len(self.inbuf) < HEADER.size + size:
                break
            payload = bytes(self.inbuf[HEADER.size:HEADER.size + size])
            del self.inbuf[:HEADER.size + size]
            if kind == EXIT:
                text = payload.decode(errors="replace")
                return int(text) if text.lstrip("-").isdigit() else 125
            write_to_reader(2 if kind == 2 else 1, payload)
        return None

    def _send_winsize(self) -> None:
        import fcntl
        import termios

        for fd in (1, 0):
            with contextlib.suppress(OSError):
                size = fcntl.ioctl(fd, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
                self._queue(RESIZE, size)
                return

    def _queue(self, kind: int, payload: bytes) -> None:
        self.outq += HEADER.pack(kind, len(payload)) + payload
        self._flush()

    def _flush(self) -> None:
        while self.outq:
            try:
                n = self.conn.send(self.outq)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # the monitor is gone: the read side says so
                self.outq.clear()
                break
            del self.outq[:n]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outq else 0)
        self.sel.modify(self.conn, events)
        if self.read_stdin:  # no more stdin read while a full queue waits
            want = len(self.outq) < (1 << 16)
            if want != (0 in self.sel.get_map()):
                if want:
                    self.sel.register(0, selectors.EVENT_READ)
                else:
                    self.sel.unregister(0)


def _raise_ended(signum: int, _frame: object) -> None:
    raise _Ended(signum)


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

