"""Small process and port facts the supervisor and the commands share: pidfiles that
survive pid reuse, stopping a process group, who listens on a port, an HTTP probe."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from formats.atomicfile import write_atomic


def start_ticks(pid: int, proc_root: str = "/proc") -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22),
    None when there is no such process (or it is a zombie)."""
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def write_pidfile(path: Path, pid: int) -> None:
    """``pid`` and its start time, written atomically."""
    write_atomic(str(path), f"{pid}\n{start_ticks(pid) or 0}\n".encode(), 0o666)


def read_pidfile(path: Path) -> int | None:
    """The pid in ``path`` if that very process still runs (same start time), else None."""
    try:
        pid_text, _, ticks_text = path.read_text().partition("\n")
        pid, ticks = int(pid_text), int(ticks_text.strip() or 0)
    except (OSError, ValueError):
        return None
    now = start_ticks(pid)
    if now is None or (ticks and now != ticks):
        return None
    return pid


def alive(pid: int) -> bool:
    return start_ticks(pid) is not None


def stop_group(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout``; True once
    the leader is gone (its stragglers are killed as well)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if not alive(pid):
            break
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    return not alive(pid)


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (SO_REUSEADDR as servers set
    it, so a closed connection in TIME_WAIT does not count as in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def listener(port: int, proc_root: str = "/proc") -> str:
    """"pid N (comm)" of a process listening on TCP ``port``, or "" when unknown."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"{proc_root}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rpartition(":")[2], 16) == port:
                inodes.add(f[9])
    if not inodes:
        return ""
    for pid in filter(str.isdigit, os.listdir(proc_root)):
        try:
            fds = os.listdir(f"{proc_root}/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{proc_root}/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                try:
                    comm = Path(f"{proc_root}/{pid}/comm").read_text().strip()
                except OSError:
                    comm = "?"
                return f"pid {pid} ({comm})"
    return ""


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
