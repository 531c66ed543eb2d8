"""The container's volume, bind and tmpfs mounts, done by PID 1 in its private mount
namespace before ``pivot_root`` (called from ``sandbox._mount_rootfs``).

Targets are resolved inside the container's root: a symlink in the image pointing at
``/etc`` means the container's ``/etc``, never the host's (what runc's securejoin does).
"""

from __future__ import annotations

import errno
import os
import stat

from runtime import syscalls as sc


def in_root(root: str, path: str) -> str:
    """``path`` of the container, symlinks followed as if ``root`` were ``/``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join([*resolved, part])
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks in {path}")
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root + "/" + "/".join(resolved)


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
    for kind, source, target, rw, data, copy_up, flags in mounts:
        dest = in_root(root, target)
        if kind == "tmpfs":
            os.makedirs(dest, exist_ok=True)
            mflags = sc.MS_NOSUID | sc.MS_NODEV
            if "noexec" in flags:
                mflags |= sc.MS_NOEXEC
            if not rw:
                mflags |= sc.MS_RDONLY
            sc.mount("tmpfs", dest, "tmpfs", mflags, data or None)
            continue
        is_dir = os.path.isdir(source)
        if is_dir:
            if os.path.lexists(dest) and not os.path.isdir(dest):
                raise OSError(errno.ENOTDIR, f"mount target {target} is not a directory")
            os.makedirs(dest, exist_ok=True)
            if copy_up and not os.listdir(source) and os.listdir(dest):
                _copy_up(dest, source)
        elif not os.path.lexists(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.close(os.open(dest, os.O_CREAT | os.O_WRONLY, 0o644))
        sc.mount(source, dest, None, sc.MS_BIND | sc.MS_REC)
        if not rw:
            sc.mount(None, dest, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC)
