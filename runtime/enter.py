"""Entering an existing container from the host: ``box exec`` runs a process in its
namespaces and cgroup, ``box cp`` reads or writes its filesystem from inside its own
root, so that no path inside the container can resolve to the host (CVE-2018-15664)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any, NamedTuple

from runtime import syscalls as sc
from runtime.errors import BoxError
from runtime.paths import Paths

# setns order: the mount namespace last, since it changes what /proc/<pid> means to us.
# The cgroup namespace after the cgroup attach (spawn): it is rooted where we stand.
_NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
               ("cgroup", sc.CLONE_NEWCGROUP), ("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS))


def join_namespaces(pid: int) -> None:
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag)
           for name, flag in _NAMESPACES]
    try:
        for fd, flag in fds:
            sc.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)


class Process(NamedTuple):
    """What runs inside the container: the arguments ``sandbox.become`` takes."""

    args: list[str]
    env: list[str]
    user: str
    cwd: str
    caps: list[str]
    privileged: bool
    tty: bool = False
    seccomp: bytes | None = None  # compiled program (runtime.spec.seccomp_program)
    no_new_privs: bool = False


def spawn(cfg: dict[str, Any], proc: Process, stdio: tuple[int | None, int | None, int | None],
          mode: str = "relay", driver: Any = None) -> tuple[int, int]:
    """Fork ``proc`` into the running container ``cfg``: its cgroup, its namespaces, then
    ``become`` (user, capabilities, exec). Shared by ``box exec`` and the health probes.

    A host-side helper joins the namespaces (only its child enters the pid namespace).
    ``mode``: "relay" returns the helper, which relays SIGINT/TERM/HUP and exits with the
    command's code (``box exec``); "detach" returns the helper, which exits at once;
    "handoff" returns the command's own pid, reparented to the caller, which must be a
    child subreaper (the monitor). ``stdio``: fds for 0, 1, 2 (None keeps ours).
    The command always leads a new session (and so a process group: ``killpg`` reaches
    what it forks) in ``become``. Also returns the read
    end of the error pipe: EOF once the command is exec'd, else ``code\nmessage``.
    """
    from runtime.sandbox import become

    if driver is None:
        from runtime.cgroups import open_driver

        driver = open_driver(version=(cfg.get("Box") or {}).get("CgroupVersion"))
    cgroup_paths = (cfg.get("Box") or {}).get("CgroupPaths") or {}
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC) if mode == "handoff" else (-1, -1)
    helper = os.fork()
    if helper == 0:
        try:
            os.close(err_r)
            driver.attach(cgroup_paths, os.getpid())
            join_namespaces(cfg["State"]["Pid"])
            child = os.fork()
            if child == 0:
                for fd, src in enumerate(stdio):
                    if src is not None and src != fd:
                        os.dup2(src, fd)
                _close_fds_but(err_w)  # nothing of ours (the monitor's pipes) leaks in
                become(list(proc.args), list(proc.env), proc.user, proc.cwd, list(proc.caps),
                       proc.privileged, proc.tty, False, err_w, proc.seccomp,
                       proc.no_new_privs)
            os.close(err_w)
            _close_fds_but(pid_w)  # only the command holds its stdio: an exec's stdin ends
            if mode == "handoff":
                os.write(pid_w, str(child).encode())
            if mode != "relay":
                os._exit(0)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, lambda s, _f: os.kill(child, s))
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(err_w, f"125\n{e}".encode())
            os._exit(125)
    os.close(err_w)
    if mode != "handoff":
        return helper, err_r
    os.close(pid_w)
    os.waitpid(helper, 0)
    raw = b""
    while chunk := os.read(pid_r, 64):
        raw += chunk
    os.close(pid_r)
    return (int(raw) if raw else 0), err_r


def _close_fds_but(keep: int) -> None:
    """Close every fd from 3 up except ``keep`` (-1: none kept)."""
    sc.close_fds_except((keep,))


def enter_root(paths: Paths, cfg: dict[str, Any]) -> None:
    """In a forked child: make a stopped container's root filesystem our ``/``: its
    overlay mounted in a private mount namespace of our own, chrooted into (the mount
    vanishes with us). A running one's namespaces are joined instead (``run_confined``).
    """
    box = cfg.get("Box") or {}
    overlay = paths.overlay_dir(cfg["ID"])
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lower = ":".join(box.get("LowerDirs") or [])
    merged = os.path.join(overlay, "merged")
    sc.mount("overlay", merged, "overlay", 0,
             f"lowerdir={lower},upperdir={os.path.join(overlay, 'diff')},"
             f"workdir={os.path.join(overlay, 'work')}")
    os.chroot(merged)
    os.chdir("/")


def run_in_child(body: Callable[[], int]) -> int:
    """Fork, run ``body`` in the child (its return value is the exit code), wait."""
    pid = os.fork()
    if pid == 0:
        code = 125
        try:
            code = body()
        except BoxError as e:
            with contextlib.suppress(OSError):
                os.write(2, f"box: {e}\n".encode())
            code = e.exit_code
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.write(2, f"box: {e}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
