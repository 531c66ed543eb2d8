"""Writing a layer's entries on the host, safely: every path is created relative to a
parent directory fd opened component by component with ``O_NOFOLLOW``, so a symlink in
the archive (or a race on the host) can never redirect a write outside the layer; a bad
entry is an ``UnsafeArchive`` naming it. Apart from ``extract``, which reads the
(compressed) tar stream, hashes it and decides what each member becomes.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO

from runtime.errors import InvalidArgument

OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FD_CACHE = 64
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeArchive(InvalidArgument):
    """An archive entry we refuse to extract; the message names the entry."""

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"unsafe archive entry {entry!r}: {reason}")
        self.entry = entry
        self.reason = reason


def components(name: str, entry: str, what: str = "path") -> list[str]:
    """Splits an in-archive path; refuses absolute paths and ``..``; drops ``.``."""
    if name.startswith("/"):
        raise UnsafeArchive(entry, f"absolute {what} {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(entry, f"{what} {name!r} has a '..' component")
    return parts


class Walker:
    """Creates entries under one root dir fd, never following a link on the host."""

    def __init__(self, root: Path) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.kinds: dict[tuple[str, ...], str] = {(): "dir"}  # what this layer created
        self.dir_meta: dict[tuple[str, ...], tuple[int, int]] = {}  # mode, mtime ns
        self.size = 0
        self.chown = os.geteuid() == 0
        # dir fds already walked to, by path: consecutive entries share a parent, and
        # re-walking it costs one open per component. Dropped when clear() removes them.
        self._fds: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        os.close(self.root_fd)

    def open_dir(self, parts: list[str] | tuple[str, ...], entry: str, create: bool) -> int:
        """fd of the directory ``parts``, opened one O_NOFOLLOW component at a time."""
        key = tuple(parts)
        cached = self._fds.get(key)
        if cached is not None:
            return os.dup(cached)
        fd = self._walk(parts, entry, create)
        if len(self._fds) >= _FD_CACHE:
            old = next(iter(self._fds))
            os.close(self._fds.pop(old))
        self._fds[key] = os.dup(fd)
        return fd

    def _walk(self, parts: list[str] | tuple[str, ...], entry: str, create: bool) -> int:
        fd = os.dup(self.root_fd)
        try:
            for i, comp in enumerate(parts):
                key = tuple(parts[: i + 1])
                kind = self.kinds.get(key)
                if kind is not None and kind != "dir":
                    raise UnsafeArchive(entry, f"parent {'/'.join(key)!r} is a {kind}")
                made = kind is None and create
                if made:  # implied parent: root-owned 0755, as Docker creates them
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    self.kinds[key] = "dir"
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:  # ELOOP/ENOTDIR: a symlink or file where a dir must be
                    raise UnsafeArchive(entry, f"parent {'/'.join(key)!r}: {e.strerror}") from e
                os.close(fd)
                fd = nfd
                if made:
                    os.fchmod(fd, 0o755)  # not left to the umask
            return fd
        except BaseException:
            os.close(fd)
            raise

    def clear(self, pfd: int, parts: list[str], keep_dir: bool) -> bool:
        """Makes room for a new entry (a later entry wins, as in tar). True if a dir stays."""
        key = tuple(parts)
        if key not in self.kinds:  # the layer dir starts empty: kinds knows all it holds
            return False
        try:
            st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(parts[-1], dir_fd=pfd)
        else:
            os.unlink(parts[-1], dir_fd=pfd)
        for k in [k for k in self.kinds if k[: len(key)] == key]:
            del self.kinds[k]
            self.dir_meta.pop(k, None)
        for k in [k for k in self._fds if k[: len(key)] == key]:
            os.close(self._fds.pop(k))
        return False

    def set_owner_mode(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.chown:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid/setgid

    def make_dir(self, parts: list[str], m: tarfile.TarInfo, entry: str) -> None:
        if parts:
            pfd = self.open_dir(parts[:-1], entry, create=True)
            try:
                if not self.clear(pfd, parts, keep_dir=True):
                    os.mkdir(parts[-1], 0o700, dir_fd=pfd)
                self.kinds[tuple(parts)] = "dir"
            finally:
                os.close(pfd)
        if self.chown:
            fd = self.open_dir(parts, entry, create=False)
            try:
                os.fchown(fd, m.uid, m.gid)
            finally:
                os.close(fd)
        self.dir_meta[tuple(parts)] = (m.mode & 0o7777, int(m.mtime * 1e9))

    def make_file(self, parts: list[str], m: tarfile.TarInfo, data: IO[bytes], entry: str) -> None:
        pfd = self.open_dir(parts[:-1], entry, create=True)
        try:
            self.clear(pfd, parts, keep_dir=False)
            fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                while chunk := data.read(_CHUNK):
                    _write_all(fd, chunk)
                self.set_owner_mode(fd, m)
                ns = int(m.mtime * 1e9)
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)
            self.kinds[tuple(parts)] = "file"
            self.size += m.size
        finally:
            os.close(pfd)

    def make_symlink(self, parts: list[str], m: tarfile.TarInfo, entry: str) -> None:
        pfd = self.open_dir(parts[:-1], entry, create=True)
        try:
            self.clear(pfd, parts, keep_dir=False)
            os.symlink(m.linkname, parts[-1], dir_fd=pfd)
            self._link_meta(pfd, parts[-1], m)
            self.kinds[tuple(parts)] = "symlink"
        finally:
            os.close(pfd)

    def make_hardlink(self, parts: list[str], m: tarfile.TarInfo, entry: str) -> None:
        target = components(m.linkname, entry, "hard link target")
        if self.kinds.get(tuple(target)) != "file":
            raise UnsafeArchive(
                entry, f"hard link to {m.linkname!r}, not an earlier regular file of this layer"
            )
        sfd = self.open_dir(target[:-1], entry, create=False)
        try:
            pfd = self.open_dir(parts[:-1], entry, create=True)
            try:
                if tuple(parts) == tuple(target):
                    return  # a link to itself: the file is already there
                self.clear(pfd, parts, keep_dir=False)
                os.link(target[-1], parts[-1], src_dir_fd=sfd, dst_dir_fd=pfd,
                        follow_symlinks=False)
                self.kinds[tuple(parts)] = "file"
            finally:
                os.close(pfd)
        finally:
            os.close(sfd)

    def make_node(self, parts: list[str], mode: int, m: tarfile.TarInfo, entry: str) -> None:
        """A FIFO or the 0:0 char device overlayfs reads as a whiteout."""
        pfd = self.open_dir(parts[:-1], entry, create=True)
        try:
            self.clear(pfd, parts, keep_dir=False)
            os.mknod(parts[-1], mode, os.makedev(0, 0), dir_fd=pfd)
            self._link_meta(pfd, parts[-1], m, set_mode=True)
            self.kinds[tuple(parts)] = "whiteout" if stat.S_ISCHR(mode) else "fifo"
        finally:
            os.close(pfd)

    def make_opaque(self, dir_parts: list[str], entry: str) -> None:
        fd = self.open_dir(dir_parts, entry, create=True)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _link_meta(self, pfd: int, name: str, m: tarfile.TarInfo, set_mode: bool = False) -> None:
        if self.chown:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if set_mode:
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)  # only on nodes we just made
        ns = int(m.mtime * 1e9)
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory modes and mtimes last (children change mtimes), deepest first."""
        for parts in sorted(self.dir_meta, key=len, reverse=True):
            fd = self.open_dir(parts, "/".join(parts) or ".", create=False)
            try:
                mode, ns = self.dir_meta[parts]
                os.fchmod(fd, mode)
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
