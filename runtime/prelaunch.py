"""``box run``'s monitor, forked before its container exists.

Why: the monitor's modules (the sandbox, ctypes, the seccomp loader, the cgroup driver,
the log pump) took ~10 ms to import, and ``box run`` imported them only after writing the
container's state, one step after the other. Forked first, the monitor imports them on
the other core while the command validates the flags, resolves the image and writes the
state; the command then hands it the container's id, under the container's lock as
``runtime.monitor.launch`` would fork it there (``Containers.start(fork_monitor=...)``).

Until it is handed an id the early process holds nothing: no lock (forked before any was
taken), no container. If the command fails or is killed first, the early process ends
(``cancel``, or the end of its go pipe) without having touched anything.
"""

from __future__ import annotations

import contextlib
import os
import signal

from runtime.paths import Paths


class EarlyMonitor:
    """A forked process that becomes the monitor of the container named by ``launch``."""

    def __init__(self, paths: Paths, attached: bool, interactive: bool) -> None:
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _child(paths, attached, interactive, go_r, status_w, (go_w, status_r))
        os.close(go_r)
        os.close(status_w)
        self.pid = pid
        self._go = go_w
        self._status = status_r

    def launch(self, cid: str) -> tuple[int, int]:
        """Start monitoring ``cid``: (monitor pid, read end of its status pipe), as
        ``runtime.monitor.launch`` returns them. Once only."""
        if self._go < 0:
            raise RuntimeError("the early monitor was launched or cancelled already")
        go, self._go = self._go, -1
        # A monitor that died before reading this closes the status pipe too: the caller
        # reads EOF there and reports it as for any monitor that ended without a word.
        with contextlib.suppress(BrokenPipeError):
            os.write(go, cid.encode() + b"\n")
        os.close(go)
        return self.pid, self._status

    def cancel(self) -> None:
        """Not needed after all (the command failed, or another command's monitor runs
        the container): end the early process, which holds nothing yet. No-op once
        launched."""
        if self._go < 0:
            return
        os.close(self._go)
        self._go = -1
        os.close(self._status)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _child(paths: Paths, attached: bool, interactive: bool, go_r: int, status_w: int,
           parent_ends: tuple[int, int]) -> None:
    """The early process: import the monitor, wait for an id, become its monitor."""
    try:
        for fd in parent_ends:
            os.close(fd)
        # Still in the command's process group until the monitor's setsid: a ^C meant
        # for the command must not end us half way; the command's end ends us (EOF).
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        if not attached:  # `id=$(box run -d ...)`: the command's stdout must end with it
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
        from runtime import monitor  # the point of forking early

        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(go_r, 128)
            if not chunk:
                os._exit(0)  # cancelled, or the command is gone: nothing was touched
            data += chunk
        os.close(go_r)
        cid = data.decode().strip()
    except BaseException:
        os._exit(1)
    monitor.serve(paths, cid, attached, interactive, status_w)
