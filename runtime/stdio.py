"""The container's fds 0/1/2 and the monitor's ends of them: pipes, or a pty whose
master comes back from inside the container (its own devpts), and what an attached
client's terminal needs (window size, stdin copy)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios


class ContainerStdio:
    """The container's fds 0/1/2 and the monitor's ends of them (pipes or a pty)."""

    def __init__(self, tty: bool, interactive: bool, attached: bool,
                 open_stdin: bool = False) -> None:
        self.tty = tty
        self.open_stdin = open_stdin  # Config.OpenStdin: attach clients may feed stdin
        self._to_close: list[int] = []
        self.stdin_copy_to: int | None = None
        self.stdin_w = -1  # the monitor's end of a kept-open stdin pipe
        self.console_child = -1
        self.master = -1
        if tty:
            # The pty is made inside the container (its devpts); the master comes back
            # over this socket pair once PID 1 has mounted /dev/pts.
            import socket

            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._console = parent
            self.console_child = child.detach()
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            self.child = (null, null, null)
            self._child_ends = [null, self.console_child]
            return
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.out_r, self.err_r = out_r, err_r
        if interactive and attached:
            stdin = 0  # the client's own stdin, handed straight to the container
        elif interactive or open_stdin:
            # -d -i: keep stdin open for the container's lifetime, as docker does
            stdin, keep = os.pipe2(os.O_CLOEXEC)
            self._to_close.append(keep)
            self.stdin_w = keep
        else:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.child = (stdin, out_w, err_w)
        self._child_ends = [out_w, err_w] + ([stdin] if stdin != 0 else [])

    def receive_console(self, attached: bool, interactive: bool) -> None:
        import socket

        _msg, fds, _flags, _addr = socket.recv_fds(self._console, 16, 1)
        self._console.close()
        if not fds:
            raise OSError("no pty master received")
        self.master = fds[0]
        if attached:
            copy_winsize(1, self.master)
            if interactive:
                self.stdin_copy_to = self.master

    def become_stdio(self) -> None:
        for target, fd in enumerate(self.child):
            os.dup2(fd, target)

    def close_child_ends(self) -> None:
        for fd in self._child_ends:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._child_ends = []

    def outputs(self) -> list[tuple[int, str, int]]:
        if self.tty:
            return [(self.master, "stdout", 1)]
        return [(self.out_r, "stdout", 1), (self.err_r, "stderr", 2)]

    def attach_stdin(self) -> int | None:
        """Where an attach client's stdin goes: the kept pipe, or the pty master of a
        container created with -i; None when its stdin is not attachable."""
        if not self.open_stdin:
            return None
        if self.tty:
            return self.master if self.master >= 0 else None
        return self.stdin_w if self.stdin_w >= 0 else None

    def close_stdin(self) -> None:
        """StdinOnce: the attached client's EOF is the container's (a pipe only)."""
        if self.stdin_w >= 0:
            self._to_close.remove(self.stdin_w)
            os.close(self.stdin_w)
            self.stdin_w = -1

    def stdin_eof(self) -> None:
        if self.tty:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")

    def close(self) -> None:
        fds = [self.master] if self.tty else [self.out_r, self.err_r]
        if self.tty:
            self._console.close()
        for fd in [f for f in fds if f >= 0] + self._to_close + self._child_ends:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._to_close = []
        self._child_ends = []


def null_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)


def copy_winsize(src: int, dst: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)


def write_to_reader(fd: int, data: bytes) -> None:
    """All of ``data`` to a blocking fd (our terminal, an exec's stdin); a reader that went
    away ends it quietly: the rest has nowhere to go."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return
