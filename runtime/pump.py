"""The monitor's copy loop, apart from its lifecycle: the container's output to the
json-file log (and to an attached client's terminal), the client's stdin to the
container, until PID 1 exits and its output has drained. It knows nothing of restarts,
cgroups or the state file; the monitor only hands it the fds and gets the wait status.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import time

from formats.jsonfile.writer import JsonFileWriter, LineSplitter, stream_to_writer
from runtime.logging.options import parse_log_opts
from runtime.stdio import ContainerStdio

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

    from runtime.attach_server import AttachServer

DRAIN_SECONDS = 2.0


def pump(cfg: dict[str, Any], pid: int, io: ContainerStdio, attached: bool, cid: str,
         server: AttachServer | None = None) -> int:
    """Copy output to the log (and an attached client, and the attach socket's clients)
    until PID 1 exits; its status."""
    host = cfg["HostConfig"]
    max_size, max_file, compress = parse_log_opts(host.get("LogConfig", {}).get("Config") or {})
    writer = JsonFileWriter(cfg["LogPath"], max_size=max_size, max_file=max_file,
                            compress=compress)
    sel = selectors.DefaultSelector()
    splitters: dict[int, LineSplitter] = {}
    tees: dict[int, int] = {}
    streams: dict[int, int] = {}  # fd -> 1 stdout, 2 stderr, for the attach socket
    for fd, stream, tee in io.outputs():
        os.set_blocking(fd, False)
        # moby's rule, through the tested function: the partials of one line (and
        # the chunk ending it) carry the time of the first partial
        splitters[fd] = stream_to_writer(writer, stream)
        if attached:
            tees[fd] = tee
        streams[fd] = tee
        sel.register(fd, selectors.EVENT_READ)
    if attached and io.stdin_copy_to is not None:
        sel.register(0, selectors.EVENT_READ)
    if server is not None:
        server.begin(sel, io.attach_stdin(), io.master if io.tty else None,
                     io.close_stdin if cfg["Config"].get("StdinOnce") and not io.tty else None)
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ)
    status = None
    deadline = None
    try:
        while splitters and (deadline is None or time.monotonic() < deadline):
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, events in sel.select(timeout):
                fd = key.fd
                if key.data is not None:  # the attach socket's
                    key.data(events)
                elif fd == pidfd:
                    _, status = os.waitpid(pid, 0)
                    sel.unregister(pidfd)
                    deadline = time.monotonic() + DRAIN_SECONDS
                elif fd == 0:
                    _copy_stdin(sel, io)
                else:
                    _read_output(fd, sel, splitters, tees, streams, server)
        if status is None:
            _, status = os.waitpid(pid, 0)
    finally:
        for sp in splitters.values():
            sp.flush()
        os.close(pidfd)
        sel.close()
        io.close()
        writer.close()
        if writer.dropped:
            os.write(2, f"box monitor {cid[:12]}: log: {writer.dropped} lines dropped, "
                        "no space left for the log file\n".encode())
    return status


def _read_output(fd: int, sel: selectors.BaseSelector, splitters: dict[int, LineSplitter],
                 tees: dict[int, int], streams: dict[int, int],
                 server: AttachServer | None) -> None:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return
    except OSError as e:
        if e.errno != errno.EIO:  # EIO: the pty's other side is closed
            raise
        data = b""
    if not data:
        sel.unregister(fd)
        splitters.pop(fd).flush()
        return
    splitters[fd].feed(data)
    if server is not None:
        server.output(streams[fd], data)
    tee = tees.get(fd)
    if tee is not None:
        try:
            _write_all(tee, data)
        except OSError:
            tees.pop(fd, None)


def _copy_stdin(sel: selectors.BaseSelector, io: ContainerStdio) -> None:
    try:
        data = os.read(0, 65536)
    except OSError:
        data = b""
    if not data:
        sel.unregister(0)
        io.stdin_eof()
        return
    with contextlib.suppress(OSError):
        _write_all(io.stdin_copy_to, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[n:]
