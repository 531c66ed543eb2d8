"""The container's volume, bind and tmpfs mounts, done by PID 1 in its private mount
namespace before ``pivot_root`` (called from ``sandbox._mount_rootfs``).

Targets are resolved inside the container's root with openat2 (RESOLVE_IN_ROOT) and
mounted through the checked fd: a symlink in the image pointing at ``/etc`` means the
container's ``/etc``, never the host's (runc's securejoin and its fd-based mounts).
"""

from __future__ import annotations

import errno
import os
import stat

from runtime import syscalls as sc
from runtime.security import inroot


def _copy_up(src: str, dst: str) -> None:
    """The image's content at a volume's target into the empty volume (docker's copy-up),
    modes, owners and times kept."""
    st = os.lstat(src)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.chown(dst, st.st_uid, st.st_gid)
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        est = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            os.symlink(os.readlink(s), d)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(d)
            _copy_up(s, d)
        elif stat.S_ISREG(est.st_mode):
            with open(s, "rb") as fin, open(d, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
            os.chmod(d, stat.S_IMODE(est.st_mode))
        else:
            continue  # devices, fifos, sockets: not copied
        os.lchown(d, est.st_uid, est.st_gid)
        if not entry.is_symlink():
            os.utime(d, ns=(est.st_atime_ns, est.st_mtime_ns))


def apply_mounts(root: str, mounts: tuple) -> None:
    """Each mount onto its target resolved in the root (openat2 RESOLVE_IN_ROOT: the
    image's symlinks are followed as the container would, never onto the host), created
    if missing, and mounted through the checked fd, not through a path walked again."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mount in mounts:
            _apply(root_fd, *mount)
    finally:
        os.close(root_fd)


def _target(root_fd: int, target: str, directory: bool) -> int:
    try:
        return inroot.ensure_in_root(root_fd, target, directory)
    except NotADirectoryError:
        raise OSError(errno.ENOTDIR, f"mount target {target} is not a directory") from None


def _apply(root_fd: int, kind: str, source: str, target: str, rw: bool, data: str,
           copy_up: bool, flags: tuple | list) -> None:
    is_dir = kind == "tmpfs" or os.path.isdir(source)
    fd = _target(root_fd, target, is_dir)
    try:
        dest = inroot.fd_path(fd)
        if kind == "tmpfs":
            mflags = sc.MS_NOSUID | sc.MS_NODEV
            if "noexec" in flags:
                mflags |= sc.MS_NOEXEC
            if not rw:
                mflags |= sc.MS_RDONLY
            sc.mount("tmpfs", dest, "tmpfs", mflags, data or None)
            return
        if is_dir and copy_up and not os.listdir(source) and os.listdir(dest):
            _copy_up(dest, source)
        sc.mount(source, dest, None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(fd)
    if not rw:  # the new mount, reached by resolving the target again (it crosses it)
        fd = _target(root_fd, target, is_dir)
        try:
            sc.mount(None, inroot.fd_path(fd), None,
                     sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC)
        finally:
            os.close(fd)
