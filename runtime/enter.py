"""Entering an existing container from the host: ``box exec`` runs a process in its
namespaces and cgroup, ``box cp`` reads or writes its filesystem from inside its own
root, so that no path inside the container can resolve to the host (CVE-2018-15664)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from runtime import syscalls as sc
from runtime.containers import is_running
from runtime.errors import BoxError
from runtime.paths import Paths

# setns order: the mount namespace last, since it changes what /proc/<pid> means to us.
_NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
               ("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS))


def join_namespaces(pid: int, which: tuple[str, ...] = ("ipc", "uts", "net", "pid", "mnt")) -> None:
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag)
           for name, flag in _NAMESPACES if name in which]
    try:
        for fd, flag in fds:
            sc.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)


def enter_root(paths: Paths, cfg: dict[str, Any]) -> None:
    """In a forked child: make the container's root filesystem our ``/``.

    Running: join its mount namespace. Stopped: mount its overlay in a private mount
    namespace of our own and chroot into it (the mount vanishes with us).
    """
    if is_running(cfg) and cfg["State"].get("Pid"):
        join_namespaces(cfg["State"]["Pid"], ("mnt",))
        os.chdir("/")
        return
    box = cfg.get("Box") or {}
    overlay = paths.overlay_dir(cfg["ID"])
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lower = ":".join(box.get("LowerDirs") or [])
    merged = os.path.join(overlay, "merged")
    sc.mount("overlay", merged, "overlay", 0,
             f"lowerdir={lower},upperdir={os.path.join(overlay, 'diff')},workdir={os.path.join(overlay, 'work')}")
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
        except BaseException as e:  # noqa: BLE001 - a forked child must not return
            with contextlib.suppress(OSError):
                os.write(2, f"box: {e}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code
