"""Container lifecycle on top of the state directory: start, stop, kill, remove, wait.

Creating a container (turning flags into state) is ``runtime/create.py``; the process
side is the monitor (``runtime/monitor.py``). Every state change happens under the
container's lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from runtime.errors import BoxError, Conflict
from runtime.journal import container_event
from runtime.paths import CGROUP_PARENT, Paths
from runtime.state import (
    Store,
    effective_state,
    is_running,
    monitor_alive,
    process_alive,
    process_start_time,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from collections.abc import Callable
    from typing import Any

    MonitorFork = Callable[[str], tuple[int, int]]


def signal_number(value: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``15`` -> 15; a clear error for anything else."""
    text = str(value).strip().upper()
    if text.isdigit():
        num = int(text)
        if 0 < num < signal.NSIG:
            return num
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
        if sig is not None:
            return int(sig)
    raise BoxError(f"Invalid signal: {value}")


class Containers:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.store = Store(paths)

    # -- start ----------------------------------------------------------------
    def start(self, cid: str, attached: bool = False, interactive: bool = False,
              fork_monitor: MonitorFork | None = None) -> tuple[int, int, StatusReader | None]:
        """Start the monitor; return (container pid, monitor pid, the rest of its status
        pipe, None when another command's monitor runs it). ``fork_monitor`` (cid ->
        (monitor pid, status fd)) stands in for ``runtime.monitor.launch``: ``box run``'s
        monitor, forked before the container existed (``runtime.prelaunch``).

        Raises BoxError (with the container's 125/126/127) when the command cannot run.
        """
        deadline = time.monotonic() + 30
        while True:
            with self.store.lock(cid):
                cfg, launched = self.launch_locked(cid, attached, interactive, fork_monitor)
            if launched is not None:
                mon_pid, status_fd = launched
                break
            if is_running(cfg):
                if cfg["State"].get("Status") == "paused":  # docker's refusal
                    raise Conflict("cannot start a paused container, try unpause instead")
                return cfg["State"]["Pid"], (cfg.get("Box") or {}).get("MonitorPid", 0), None
            # Another monitor is starting (or finishing) this container: let it decide.
            if time.monotonic() > deadline:
                raise Conflict(f"container {cid[:12]} is being started by another command")
            time.sleep(0.01)
        reader = StatusReader(status_fd)
        kind, rest = reader.next()
        # The same reader goes on: one read may have brought "started" and "exit" at once
        # (a short command on a loaded machine), and a new reader would lose the exit.
        if kind == "started":
            return int(rest), mon_pid, reader
        if kind == "error":
            code, _, message = rest.partition(" ")
            reader.drain()
            _reap(mon_pid)
            raise BoxError(message or f"container {cid[:12]}: failed to start (no cause "
                           f"reported; see {monitor_log(self.paths, cid)})",
                           int(code) if code.isdigit() else 125)
        if kind == "exit":  # exited before we even heard it started
            reader.push_back(f"exit {rest}")
            return 0, mon_pid, reader
        _reap(mon_pid)
        raise BoxError(f"container {cid[:12]}: monitor exited without starting it"
                       f"{monitor_log_tail(self.paths, cid)}")

    def launch_locked(self, cid: str, attached: bool = False, interactive: bool = False,
                      fork_monitor: MonitorFork | None = None
                      ) -> tuple[dict[str, Any], tuple[int, int] | None]:
        """Start's step under the container's lock, which the caller holds: fork the
        monitor unless one runs (the state, and (monitor pid, status fd) or None)."""
        cfg = self.store.load(cid)
        box = cfg.get("Box") or {}
        if is_running(cfg) or monitor_alive(cfg):
            return cfg, None
        cfg["HasBeenManuallyStopped"] = False
        cfg["State"]["Error"] = ""
        if fork_monitor is None:
            from runtime.monitor import launch

            mon_pid, status_fd = launch(self.paths, cid, attached, interactive)
        else:
            mon_pid, status_fd = fork_monitor(cid)
        # Recorded before the lock goes: a concurrent start sees this monitor and waits
        # for it instead of launching a second one, a concurrent rm refuses.
        cfg["Box"] = {**box, "MonitorPid": mon_pid, "MonitorStart": process_start_time(mon_pid)}
        self.store.save(cfg, durable=False)  # a pid: a reboot ends it anyway
        return cfg, (mon_pid, status_fd)

    # -- stop / kill ------------------------------------------------------------
    def stop(self, cid: str, timeout: float | None = None, sig: str | None = None) -> None:
        """SIGTERM (or the image's StopSignal, or ``sig``), then SIGKILL after ``timeout``."""
        with self.store.lock(cid):
            cfg = self.store.load(cid)
            cfg["HasBeenManuallyStopped"] = True
            self.store.save(cfg)
        if not is_running(cfg):
            return
        if timeout is None:
            timeout = cfg["Config"].get("StopTimeout") or 10
        pid = cfg["State"].get("Pid", 0)
        num = signal_number(sig or cfg["Config"].get("StopSignal") or "SIGTERM")
        if pid:
            self._signal(cfg, num)
        if not self._wait_stopped(cid, timeout):
            cfg = self.store.load(cid)
            if cfg["State"].get("Pid"):
                self._signal(cfg, signal.SIGKILL)
            self._wait_stopped(cid, 30)
        # Like docker, stop returns once the container's network is torn down (its
        # published ports and addresses free again): the monitor does that as it ends.
        self.wait_monitor_gone(cid, 10)
        container_event(self.paths.root, cfg, "stop")

    def _signal(self, cfg: dict[str, Any], num: int) -> None:
        """``num`` to PID 1, journaled as docker's ``kill`` event; a paused container is
        thawed first (as docker does), so the signal is delivered at once."""
        container_event(self.paths.root, cfg, "kill", signal=num)
        with contextlib.suppress(ProcessLookupError):
            os.kill(cfg["State"]["Pid"], num)
        if cfg["State"].get("Paused"):
            from runtime.pause import thaw_for_signal

            thaw_for_signal(self.store, cfg)

    def kill(self, cid: str, sig: str | int = "SIGKILL") -> None:
        num = signal_number(sig)
        cfg = self.store.load(cid)
        if not is_running(cfg) or not cfg["State"].get("Pid"):
            raise Conflict(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
        self._signal(cfg, num)

    def _wait_stopped(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            cfg = self.store.load(cid)
            state = effective_state(cfg)
            if state["Status"] not in ("running", "restarting", "paused"):
                return True
            if state["Status"] == "running" and not process_alive(state.get("Pid", 0), None):
                pass  # exited; the monitor is recording it
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def wait_monitor_gone(self, cid: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                cfg = self.store.load(cid)
            except BoxError:
                return
            if not monitor_alive(cfg):
                return
            time.sleep(0.01)

    def wait(self, cid: str) -> int:
        """``docker wait``: block until the container stops; its exit code."""
        while True:
            cfg = self.store.load(cid)
            if not is_running(cfg):
                return cfg["State"].get("ExitCode", 0)
            time.sleep(0.02)

    # -- remove -----------------------------------------------------------------
    def remove(self, cid: str, force: bool = False, volumes: bool = False) -> None:
        """``volumes``: also its anonymous volumes (``rm -v``); named ones always stay.

        Whether it runs is decided again under the lock, where it is deleted: a ``box
        start`` between the first look and the lock launched a monitor, and a container
        is never removed from under its monitor (without ``-f``: refused; with: killed,
        then removed)."""
        cfg = self.store.load(cid)
        deadline = time.monotonic() + 60
        while True:
            running = is_running(cfg)
            if running and not force:
                raise _running(cid)
            killed = False
            if force and (running or monitor_alive(cfg)):
                with self.store.lock(cid):
                    cfg = self.store.load(cid)
                    cfg["HasBeenManuallyStopped"] = True  # no restart policy brings it back
                    self.store.save(cfg)
                if is_running(cfg) and cfg["State"].get("Pid"):
                    self._signal(cfg, signal.SIGKILL)  # journaled; a paused one thawed
                    killed = True
            # A monitor still starting (no pid to kill yet) is looked at again shortly.
            starting = force and not killed and monitor_alive(cfg)
            self.wait_monitor_gone(cid, 0.2 if starting else 30)
            with self.store.lock(cid):
                try:
                    cfg = self.store.load(cid)
                except BoxError:
                    return  # removed by its own monitor (--rm)
                if not monitor_alive(cfg):
                    self._release_kernel_objects(cfg)
                    self.store.delete(cfg)
                    break
                if not force:
                    raise _running(cid)
            if time.monotonic() > deadline:
                raise Conflict(f"container {cid[:12]}: its monitor did not stop; "
                               f"not removed")
        container_event(self.paths.root, cfg, "destroy")
        if volumes and cfg.get("MountPoints"):
            from runtime.volumes import remove_anonymous

            remove_anonymous(self.paths, cfg)

    def _release_kernel_objects(self, cfg: dict[str, Any]) -> None:
        """What a dead monitor could not clean: processes and cgroups."""
        box = cfg.get("Box") or {}
        paths = box.get("CgroupPaths")
        if paths:
            from runtime.cgroups import open_driver

            open_driver(version=box.get("CgroupVersion")).destroy(paths)
        elif box.get("MonitorPid"):  # died before recording them with the running state
            from runtime.cgroups import open_driver

            driver = open_driver()
            driver.destroy(driver.group_paths(f"{CGROUP_PARENT}/{cfg['ID']}"))
        settings = cfg.get("NetworkSettings") or {}
        if any(ep.get("EndpointID") for ep in (settings.get("Networks") or {}).values()):
            from runtime.network.endpoint import release_dead

            release_dead(self.paths, cfg)  # veths, addresses, published ports


def _running(cid: str) -> Conflict:
    return Conflict(f"You cannot remove a running container {cid}. Stop the container "
                    "before attempting removal or force remove")


def monitor_log(paths: Paths, cid: str) -> str:
    return os.path.join(paths.run_dir(cid), "monitor.log")


def monitor_log_tail(paths: Paths, cid: str) -> str:
    """``: <last line of monitor.log>``, or "" when it has none: what a monitor that
    could not report over its status pipe left behind."""
    try:
        with open(monitor_log(paths, cid), "rb") as f:
            lines = f.read()[-4096:].decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""


class StatusReader:
    """Lines from the monitor's status pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next(self) -> tuple[str, str]:
        while b"\n" not in self.buf:
            try:
                data = os.read(self.fd, 4096)
            except InterruptedError:
                continue
            if not data:
                return "eof", ""
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        kind, _, rest = line.decode(errors="replace").partition(" ")
        return kind, rest

    def push_back(self, line: str) -> None:
        """``line`` is what ``next`` returns first again."""
        self.buf = line.encode() + b"\n" + self.buf

    def drain(self) -> None:
        while self.next()[0] != "eof":
            pass
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
