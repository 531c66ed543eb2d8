"""One small process per container, like conmon: it creates the namespaces and the
cgroup, holds the container's stdout/stderr, writes the json-file log, reaps the exit
status (and OOM kill) into the state file, applies the restart policy, and cleans up.
The copy loop between the container's stdio, the log and an attached client is its own
idea, in ``runtime.pump``.

The monitor is forked from the ``box`` command that starts the container (no new
interpreter), and tells it how the start went through a status pipe, one line each:
``started <pid>``, ``error <code> <message>``, ``exit <code>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import time

from formats.units import rfc3339nano
from runtime import syscalls as sc
from runtime.attach_server import open_server
from runtime.cgroups import open_driver
from runtime.cgroups.driver import Driver
from runtime.journal import container_event, network_events
from runtime.oomwatch import OomWatch
from runtime.paths import CGROUP_PARENT, Paths
from runtime.pump import pump
from runtime.sandbox import SandboxSpec, enter
from runtime.security.devices import apply_device_rules as confine_cgroup
from runtime.spec import resources_from_hostconfig, restart_decision, sandbox_spec
from runtime.state import Store, remove_tree
from runtime.stdio import ContainerStdio, null_stdio

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

_NS_FLAGS = sc.CLONE_NEWPID | sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC


def launch(paths: Paths, cid: str, attached: bool, interactive: bool) -> tuple[int, int]:
    """Fork the monitor; return (monitor pid, read end of its status pipe)."""
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(status_r)
        serve(paths, cid, attached, interactive, status_w)
    os.close(status_w)
    return pid, status_r


def serve(paths: Paths, cid: str, attached: bool, interactive: bool, status_w: int) -> None:
    """The monitor's whole life, in a process forked for it (by ``launch``, or early by
    ``runtime.prelaunch``): never returns."""
    code = 0
    try:
        # Drop everything else the client held (its container lock above all).
        sc.close_fds_except((status_w,))
        Monitor(paths, cid, attached, interactive, status_w).run()
    except BaseException as e:  # a forked child must never return
        # Told to the client too: with -d our stderr is monitor.log, and a client
        # that hears nothing could only exit 125 without a word.
        try:
            os.write(status_w, f"error 125 monitor: {cause(e)}\n".encode())
        except OSError:  # the client is gone (or was told already): the log then
            with contextlib.suppress(OSError):
                os.write(2, f"box monitor {cid[:12]}: {e!r}\n".encode())
        code = 1
    finally:
        os._exit(code)


class Monitor:
    def __init__(self, paths: Paths, cid: str, attached: bool, interactive: bool,
                 status_w: int) -> None:
        self.paths = paths
        self.cid = cid
        self.store = Store(paths)
        self.attached = attached
        self.interactive = interactive
        self.status_w: int | None = status_w
        self.driver: Driver | None = None
        self.cgroup_paths: dict[str, str] = {}
        self.net: Any = None  # runtime.network.endpoint.Attachment, bridge/user/container: only
        self.attach: Any = None  # runtime.attach_server.AttachServer: `box attach` clients

    # -- status pipe to the starting command --------------------------------
    def _tell(self, line: str) -> None:
        if self.status_w is None:
            return
        try:
            os.write(self.status_w, (line + "\n").encode())
        except OSError:
            self.status_w = None

    def _detach_client(self) -> None:
        """The starting command is done with us: let go of its pipe and its stdio."""
        if self.status_w is not None:
            os.close(self.status_w)
            self.status_w = None
        if self.attached:
            null_stdio()
            self.attached = False
        self._redirect_stderr()

    def _redirect_stderr(self) -> None:
        """Our stderr to monitor.log; /dev/null if that cannot be opened (a log we cannot
        write must not cost the container its monitor, nor its recorded exit code)."""
        run_dir = self.paths.run_dir(self.cid)
        try:
            os.makedirs(run_dir, exist_ok=True)
            fd = os.open(os.path.join(run_dir, "monitor.log"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError:
            fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        os.dup2(fd, 2)
        os.close(fd)

    # -- lifecycle ----------------------------------------------------------
    def run(self) -> None:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        sc.set_child_subreaper()
        if not self.attached:
            # Detached: the client's stdout must reach EOF when the client exits
            # (`id=$(box run -d ...)`), so hold none of its stdio.
            null_stdio()
            self._redirect_stderr()
        # `box start` recorded MonitorPid/MonitorStart before letting go of the lock.
        cfg = self.store.load(self.cid)
        exit_code = 125
        self.attach = open_server(self.paths.run_dir(self.cid))
        try:
            self.driver = open_driver()
            group = f"{CGROUP_PARENT}/{self.cid}"
            self.cgroup_paths = self.driver.create(
                group, resources_from_hostconfig(cfg["HostConfig"])
            )
            confine_cgroup(self.driver.version, self.cgroup_paths, cfg["HostConfig"])
            # Recorded with the running state (one state write fewer before PID 1's exec);
            # a monitor killed before that leaves none: `rm` then destroys box/<id> by name.
            mode = cfg["HostConfig"].get("NetworkMode") or "none"
            if mode not in ("none", "host"):  # none/host import nothing of runtime.network
                from runtime.network.endpoint import Attachment

                self.net = Attachment(self.paths, cfg)
                cfg = self.net.setup(cfg)
            exit_code = self._run_with_restarts(cfg)
        except Exception as e:  # recorded in the state and told to the client
            self._tell(f"error 125 {cause(e)}")
            # Like docker: a container whose command never ran stays "created".
            never_ran = cfg["State"].get("StartedAt", "").startswith("0001")
            self.store.update(self.cid, Status="created" if never_ran else "exited",
                              Running=False, Restarting=False, ExitCode=125, Error=str(e),
                              Pid=0, FinishedAt=rfc3339nano())
        finally:
            if self.driver and self.cgroup_paths:
                with contextlib.suppress(Exception):
                    self.driver.destroy(self.cgroup_paths)
            if self.net is not None:
                try:
                    self.net.release()
                except Exception as e:
                    os.write(2, f"box monitor {self.cid[:12]}: network release: {e}\n".encode())
            if self.attach is not None:
                self.attach.close()
            self._finish(exit_code)

    def _finish(self, exit_code: int) -> None:
        removed = False
        with self.store.lock(self.cid):
            try:
                cfg = self.store.load(self.cid)
            except Exception:
                cfg = None
            if cfg is not None:
                box = cfg.get("Box") or {}
                box.pop("MonitorPid", None)
                box.pop("MonitorStart", None)
                cfg["Box"] = box
                if cfg["HostConfig"].get("AutoRemove"):
                    self.store.delete(cfg)
                    container_event(self.paths.root, cfg, "destroy")
                    removed = True
                else:
                    self.store.save(cfg)
        self._tell(f"exit {exit_code}")
        self._detach_client()
        if removed:  # _detach_client reopened monitor.log in the run dir: --rm leaves nothing
            remove_tree(self.paths.run_dir(self.cid))

    def _run_with_restarts(self, cfg: dict[str, Any]) -> int:
        delay = 0.1
        first = True
        while True:
            started = time.monotonic()
            exit_code = self._run_once(cfg, first)
            if exit_code is None:  # could not start: already reported
                return cfg["State"].get("ExitCode", 125)
            if first and not cfg["HostConfig"].get("AutoRemove"):
                # With --rm the client hears of the exit only after removal (_finish).
                self._tell(f"exit {exit_code}")
                self._detach_client()
            first = False
            cfg = self.store.load(self.cid)
            if not restart_decision(cfg, exit_code):
                return exit_code
            if time.monotonic() - started > 10:
                delay = 0.1
            self.store.update(self.cid, Status="restarting", Restarting=True)
            if not self._sleep_unless_stopped(delay):
                self.store.update(self.cid, Status="exited", Restarting=False)
                return exit_code
            # Counted when it happens: a stop during the back-off is not a restart.
            cfg = self.store.update(self.cid, top_RestartCount=cfg.get("RestartCount", 0) + 1)
            container_event(self.paths.root, cfg, "restart")
            delay = min(delay * 2, 60.0)

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            if self.store.load(self.cid).get("HasBeenManuallyStopped"):
                return False
        return True

    # -- one run of the container's process ---------------------------------
    def _run_once(self, cfg: dict[str, Any], first: bool) -> int | None:
        spec = sandbox_spec(self.paths, cfg)
        host = cfg["HostConfig"]
        tty = bool(cfg["Config"].get("Tty"))
        oom_before = self.driver.oom_kills(self.cgroup_paths)
        io = ContainerStdio(tty, self.interactive, self.attached,
                            open_stdin=bool(cfg["Config"].get("OpenStdin")))
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        mode = host.get("NetworkMode", "none")
        new_net = mode != "host" and not mode.startswith("container:")
        flags = _NS_FLAGS | (sc.CLONE_NEWNET if new_net else 0)
        if host.get("CgroupnsMode") == "private":  # its own cgroup is "/" to it
            flags |= sc.CLONE_NEWCGROUP
        c1 = os.fork()
        if c1 == 0:
            self._first_child(spec, io, err_w, sync_w, flags)
        os.close(err_w)
        os.close(sync_w)
        io.close_child_ends()
        os.waitpid(c1, 0)
        raw_pid = _read_all(sync_r)
        os.close(sync_r)
        failure = _read_all(err_r)
        os.close(err_r)
        if not raw_pid:
            failure = failure or b"125\ncould not create the container's namespaces"
        pid = int(raw_pid) if raw_pid else 0
        if not failure and tty:
            try:
                io.receive_console(self.attached, self.interactive)
            except OSError as e:
                failure = f"125\ncould not receive the container's pty: {e}".encode()
        if failure:
            if pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            if self.net is not None:
                self.net.after_run()
            code_s, _, message = failure.decode(errors="replace").partition("\n")
            code = int(code_s) if code_s.isdigit() else 125
            message = " ".join(message.split()) or \
                f"the container's process exited {code} before running its command"
            io.close()
            # Like docker: a container whose command never ran stays "created".
            self.store.update(self.cid, Status="created" if first else "exited",
                              Running=False, Restarting=False, ExitCode=code, Error=message,
                              Pid=0)
            if first:
                self._tell(f"error {code} {message}")
            return None
        running = self.store.update(self.cid, box={"CgroupPaths": self.cgroup_paths,
                                                   "CgroupVersion": self.driver.version},
                                    Status="running", Running=True, Restarting=False,
                                    Paused=False, Pid=pid, ExitCode=0, Error="", OOMKilled=False,
                                    StartedAt=rfc3339nano(), top_HasBeenManuallyStopped=False,
                                    durable=False)  # a running process, cgroups: a reboot ends them
        network_events(self.paths.root, running, "connect")  # none/host too, as moby
        container_event(self.paths.root, running, "start")
        oom_watch = OomWatch(self.store, self.driver, self.cgroup_paths, oom_before, running)
        health = self._start_health(running)
        if first:
            self._tell(f"started {pid}")
        try:
            status = pump(cfg, pid, io, self.attached, self.cid, self.attach)
        finally:
            if health is not None:
                health.stop()
            oom = oom_watch.stop() > 0  # each kill journaled as it came: `oom` before `die`
        if self.net is not None:
            self.net.after_run()
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code < 0:
            exit_code = 128 - exit_code
        ended_state = dict(Status="exited", Running=False, Paused=False, Pid=0,
                           ExitCode=exit_code, OOMKilled=oom, FinishedAt=rfc3339nano())
        if cfg["HostConfig"].get("AutoRemove"):
            # Its record is deleted as the monitor finishes (--rm never restarts): a
            # durable "exited" written just before would be two fsyncs for nothing.
            ended = {**running, "State": {**running["State"], **ended_state}}
        else:
            ended = self.store.update(self.cid, **ended_state)
        network_events(self.paths.root, ended, "disconnect")  # moby: before die
        container_event(self.paths.root, ended, "die", exitCode=exit_code)
        if self.attach is not None:  # after the state says exited: clients exit with it
            self.attach.ended(exit_code)
        return exit_code

    def _start_health(self, cfg: dict[str, Any]) -> Any:
        """The healthcheck's probe thread, or None; runtime.health is imported only for a
        container that has a check to run."""
        test = (cfg["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
        if test[0] not in ("CMD", "CMD-SHELL"):
            return None
        from runtime.health import HealthChecker

        try:
            checker = HealthChecker(self.store, cfg, self.driver)
        except (ValueError, OSError) as e:  # an empty command; PID 1 gone already
            os.write(2, f"box monitor {self.cid[:12]}: healthcheck not started: {e}\n".encode())
            return None
        checker.start()
        return checker

    def _first_child(self, spec: SandboxSpec, io: ContainerStdio, err_w: int, sync_w: int,
                     ns_flags: int) -> None:
        """C1: join the cgroup, unshare (a cgroup namespace is rooted where we stand, so
        after the attach), fork PID 1, report its pid, exit."""
        new_net = bool(ns_flags & sc.CLONE_NEWNET)
        try:
            self.driver.attach(self.cgroup_paths, os.getpid())
            if self.net is not None:
                self.net.before_unshare()
            sc.unshare(ns_flags)
            if self.net is not None:
                self.net.after_unshare()  # eth0 configured before PID 1 exists
            pid = os.fork()
            if pid == 0:
                os.close(sync_w)
                io.become_stdio()
                sc.close_fds_except((err_w, io.console_child))
                if new_net:
                    _loopback_up()
                enter(spec, err_w, io.console_child)
            os.write(sync_w, str(pid).encode())
            os._exit(0)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(err_w, f"125\n{cause(e)}".encode())
            os._exit(125)


def _loopback_up() -> None:
    """``lo`` up in a fresh network namespace, with one ioctl (no netlink library)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    fd = sc.inet_dgram_socket()
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(fd, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(fd, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        os.close(fd)


def cause(exc: BaseException) -> str:
    """An exception as the one line the status pipe carries: never empty (``OSError()``
    has no text), never two lines (the pipe is line-based)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else repr(exc)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not data:
            return b"".join(chunks)
        chunks.append(data)
