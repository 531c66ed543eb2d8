"""The monitor's attach socket (``attach.sock`` in the container's run dir): what lets
``box attach`` see a running container's live output and, for a container created with
``-i``, feed its stdin, as docker's daemon does, without a daemon.

Frames both ways are docker's stdcopy header (``[stream, 0, 0, 0, uint32 BE length]``)
and a payload. Monitor to client: 1 stdout, 2 stderr (a tty's one stream is 1), 3 the
exit code (ASCII) once the container has exited and the state says so. Client to
monitor: 0 stdin bytes (an empty one: the client's stdin ended), 4 a window size
(``struct winsize``, applied to the pty master).

The monitor must never wait for a client: every client socket is non-blocking with a
bounded queue, and a client that falls ``CLIENT_QUEUE`` bytes behind is dropped (the log
and the container go on; docker's attach can stall a container instead). Input for the
container's stdin is queued up to ``STDIN_QUEUE`` bytes; past that the monitor stops
reading clients until the container reads, so a container that does not read its stdin
slows the writers, never the monitor.

Only root can connect: the socket is 0600 in the root-only run dir. It is bound (and
connected) through ``/proc/self/fd/<dir fd>/``, so a long exec root does not hit the
108-byte limit of a socket address. ``_socket``, not ``socket``: the monitor starts on
the ``box run`` path, and the wrapper module costs ~3 ms of import there.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import fcntl
import os
import selectors
import struct
import termios
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

SOCK_NAME = "attach.sock"
HEADER = struct.Struct(">BxxxI")
STDIN, STDOUT, STDERR, EXIT, RESIZE = 0, 1, 2, 3, 4
CLIENT_QUEUE = 2 << 20  # output queued for one client before it is dropped
STDIN_QUEUE = 1 << 16  # client input queued for the container before reading pauses
MAX_FRAME = 1 << 20  # a client frame larger than this is a broken client: dropped
FLUSH_SECONDS = 1.0  # at exit, how long queued output may take to reach the clients


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


def socket_address(dir_fd: int) -> str:
    """The socket's address through an open fd of its directory (no length limit)."""
    return f"/proc/self/fd/{dir_fd}/{SOCK_NAME}"


class _Client:
    __slots__ = ("fd", "out", "inbuf", "events")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.out = bytearray()
        self.inbuf = bytearray()
        self.events = 0


class AttachServer:
    """The listening socket for the monitor's lifetime; clients for one run at a time
    (``begin`` when the pump starts, ``ended`` once the exit is recorded)."""

    def __init__(self, run_dir: str) -> None:
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(run_dir, SOCK_NAME)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead monitor's (this container has one monitor)
        dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            sock.bind(socket_address(dir_fd))
            os.chmod(self.path, 0o600)  # before listen: nobody connects in between
            sock.listen(16)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dir_fd)
        self.sock = sock
        self.clients: dict[int, _Client] = {}
        self.sel: selectors.BaseSelector | None = None
        self.stdin_fd = -1
        self.stdin_q = bytearray()
        self.stdin_close_after = False
        self.close_stdin: Callable[[], None] | None = None
        self.winsize_fd = -1
        self.reading = True

    # -- one run of the container ----------------------------------------------
    def begin(self, sel: selectors.BaseSelector, stdin_fd: int | None, winsize_fd: int | None,
              close_stdin: Callable[[], None] | None) -> None:
        """Serve clients from ``sel`` (the pump's): their stdin to ``stdin_fd`` (None: not
        attached), window sizes to ``winsize_fd``; ``close_stdin`` for StdinOnce."""
        self.sel = sel
        self.reading = True
        self.stdin_q.clear()
        self.stdin_close_after = False
        self.close_stdin = close_stdin
        self.winsize_fd = -1 if winsize_fd is None else winsize_fd
        self.stdin_fd = -1
        if stdin_fd is not None:
            self.stdin_fd = os.dup(stdin_fd)  # its own number: the master is also read
            os.set_blocking(self.stdin_fd, False)
        sel.register(self.sock.fileno(), selectors.EVENT_READ, self._accept)

    def output(self, stream: int, data: bytes) -> None:
        """The container wrote ``data``: queue it for every client, drop laggards."""
        if not self.clients:
            return
        chunk = frame(stream, data)
        for client in list(self.clients.values()):
            if len(client.out) + len(chunk) > CLIENT_QUEUE:
                self._drop(client)
                continue
            client.out += chunk
            self._flush(client)

    def ended(self, exit_code: int) -> None:
        """The exit is recorded: send each client its output's tail (for at most
        ``FLUSH_SECONDS`` in all) and the exit code, close them; the socket stays."""
        if self.sel is None:
            return
        self.sel = None  # the pump has closed it: plain non-blocking writes from here
        self._accept(0)  # who connected while it ended hears the code too
        for client in list(self.clients.values()):
            client.out += frame(EXIT, str(exit_code).encode())
        deadline = time.monotonic() + FLUSH_SECONDS
        waiting = list(self.clients.values())
        while waiting and time.monotonic() < deadline:
            for client in waiting:
                self._flush(client)
            waiting = [c for c in waiting if c.out and c.fd in self.clients]
            if waiting:
                time.sleep(0.005)
        for client in list(self.clients.values()):
            self._drop(client)
        if self.stdin_fd >= 0:
            self._stop_stdin()

    def close(self) -> None:
        """The monitor is ending: no socket left behind."""
        for client in list(self.clients.values()):
            self._drop(client)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    # -- selector callbacks ----------------------------------------------------
    def _accept(self, _events: int) -> None:
        while True:
            try:
                fd, _addr = self.sock._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and the like: this client only
                os.write(2, f"box monitor: attach: accept: {e}\n".encode())
                return
            os.set_blocking(fd, False)
            client = _Client(fd)
            self.clients[fd] = client
            self._interest(client)

    def _client_event(self, events: int, fd: int) -> None:
        client = self.clients.get(fd)
        if client is None:
            return
        if events & selectors.EVENT_WRITE:
            self._flush(client)
        if events & selectors.EVENT_READ and fd in self.clients:
            self._read_client(client)

    def _read_client(self, client: _Client) -> None:
        try:
            data = os.read(client.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.inbuf += data
        while len(client.inbuf) >= HEADER.size:
            kind, size = HEADER.unpack_from(client.inbuf)
            if size > MAX_FRAME:
                self._drop(client)
                return
            if len(client.inbuf) < HEADER.size + size:
                break
            payload = bytes(client.inbuf[HEADER.size:HEADER.size + size])
            del client.inbuf[:HEADER.size + size]
            self._client_frame(kind, payload)
        self._pause_if_full()

    def _client_frame(self, kind: int, payload: bytes) -> None:
        if kind == RESIZE and self.winsize_fd >= 0 and len(payload) == 8:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.winsize_fd, termios.TIOCSWINSZ, payload)
        elif kind == STDIN and self.stdin_fd >= 0:
            if payload:
                self.stdin_q += payload
            elif self.close_stdin is not None:  # StdinOnce: its EOF is the container's
                self.stdin_close_after = True
            self._write_stdin(0)

    def _write_stdin(self, _events: int) -> None:
        if self.stdin_fd < 0:
            return
        while self.stdin_q:
            try:
                n = os.write(self.stdin_fd, self.stdin_q)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # EPIPE/EIO: the container closed its stdin or ended
                self._stop_stdin()
                return
            del self.stdin_q[:n]
        registered = self.stdin_fd in self.sel.get_map() if self.sel else False
        if self.stdin_q and not registered and self.sel is not None:
            self.sel.register(self.stdin_fd, selectors.EVENT_WRITE, self._write_stdin)
        elif not self.stdin_q and registered and self.sel is not None:
            self.sel.unregister(self.stdin_fd)
        if not self.stdin_q and self.stdin_close_after:
            close, self.close_stdin = self.close_stdin, None
            self._stop_stdin()
            if close is not None:
                close()
        self._pause_if_full()

    def _stop_stdin(self) -> None:
        if self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = -1
        self.stdin_q.clear()

    # -- helpers ---------------------------------------------------------------
    def _pause_if_full(self) -> None:
        """Stop reading clients while the container's stdin queue is full."""
        reading = len(self.stdin_q) < STDIN_QUEUE
        if reading != self.reading:
            self.reading = reading
            for client in list(self.clients.values()):
                self._interest(client)

    def _flush(self, client: _Client) -> None:
        while client.out:
            try:
                n = os.write(client.fd, client.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                    os.write(2, f"box monitor: attach: {e}\n".encode())
                self._drop(client)
                return
            del client.out[:n]
        self._interest(client)

    def _interest(self, client: _Client) -> None:
        events = (selectors.EVENT_READ if self.reading else 0) | \
            (selectors.EVENT_WRITE if client.out else 0)
        if events == client.events or self.sel is None:
            return
        callback = lambda ev, fd=client.fd: self._client_event(ev, fd)  # noqa: E731
        if client.events and events:
            self.sel.modify(client.fd, events, callback)
        elif events:
            self.sel.register(client.fd, events, callback)
        else:
            self.sel.unregister(client.fd)
        client.events = events

    def _drop(self, client: _Client) -> None:
        if self.clients.pop(client.fd, None) is None:
            return
        if client.events and self.sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(client.fd)
        os.close(client.fd)


def open_server(run_dir: str) -> AttachServer | None:
    """The server, or None (said in monitor.log): a container runs without attach
    rather than not at all."""
    try:
        return AttachServer(run_dir)
    except OSError as e:
        os.write(2, f"box monitor: attach socket not served: {e}\n".encode())
        return None
