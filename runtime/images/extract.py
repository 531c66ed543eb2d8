"""Safe extraction of one layer tarball, with its diff_id computed on the way.

Our own walk, not ``tarfile``'s extraction filters (3.11.7's have known bypasses):
tarfile only iterates members and reads their data. Every path is created relative to
a parent directory fd that was opened component by component with ``O_NOFOLLOW``, so a
symlink in the archive (or a race on the host) can never redirect a write outside the
layer. The layer is built in a temp dir next to ``dest`` and renamed into place only
when the whole archive was good; on any bad entry it is removed and ``UnsafeArchive``
names the entry.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import tarfile
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from runtime.errors import InvalidArgument
from runtime.images.tarsplit import Recorder

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FD_CACHE = 64
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

ARCHIVE = "<archive>"  # entry name used for stream-level problems


class UnsafeArchive(InvalidArgument):
    """An archive entry we refuse to extract; the message names the entry."""

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"unsafe archive entry {entry!r}: {reason}")
        self.entry = entry
        self.reason = reason


@dataclass(frozen=True)
class Extracted:
    """What the store records about a layer: its diff_id and content size in bytes."""

    diff_id: str
    size: int
    tar_size: int = 0  # bytes of the uncompressed tar stream


class _SizeCapExceeded(Exception):
    pass


class _HashingReader(io.RawIOBase):
    """Counts and hashes the uncompressed tar stream; stops it at ``max_bytes``."""

    def __init__(self, src: IO[bytes], max_bytes: int, recorder: Recorder | None = None) -> None:
        self._src = src
        self._max = max_bytes
        self.total = 0
        self.sha = hashlib.sha256()
        self.recorder = recorder

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self._src.read(len(buf))
        n = len(data)
        if n:
            self.total += n
            if self.total > self._max:
                raise _SizeCapExceeded()
            self.sha.update(data)
            if self.recorder is not None:
                self.recorder.feed(self.total - n, data)
            buf[:n] = data
        return n

    def drain(self) -> None:
        """Reads the tail tarfile left behind (end-of-archive padding) so the hash is whole."""
        while self.read(_CHUNK):
            pass


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``src``: lets us sniff magic bytes from a pipe."""

    def __init__(self, head: bytes, src: IO[bytes]) -> None:
        self._head = head
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._src.read(len(buf))
        buf[: len(data)] = data
        return len(data)


MAX_LAYER_BYTES = 20 * 1024**3  # uncompressed bytes one layer may hold (bomb cap)

def open_decompressed(fileobj: IO[bytes]) -> IO[bytes]:
    """gzip / zstd / xz / bzip2 / plain, chosen by magic bytes as ``docker import`` does."""
    head = b""
    while len(head) < 6:
        more = fileobj.read(6 - len(head))
        if not more:
            break
        head += more
    raw = io.BufferedReader(_Prefixed(head, fileobj), _CHUNK)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard
        except ImportError:
            raise UnsafeArchive(
                ARCHIVE, "zstd-compressed, but the zstandard module is not installed"
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    return raw


def _components(name: str, entry: str, what: str = "path") -> list[str]:
    """Splits an in-archive path; refuses absolute paths and ``..``; drops ``.``."""
    if name.startswith("/"):
        raise UnsafeArchive(entry, f"absolute {what} {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(entry, f"{what} {name!r} has a '..' component")
    return parts


class _Walker:
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
        target = _components(m.linkname, entry, "hard link target")
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


def _extract_member(w: _Walker, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
    entry = m.name
    parts = _components(m.name, entry)
    base = parts[-1] if parts else ""
    if base == OPAQUE_MARKER:
        w.make_opaque(parts[:-1], entry)
        return
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return  # other AUFS metadata (.wh..wh.plnk ...): meaningless to overlayfs
    if base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise UnsafeArchive(entry, f"whiteout of {hidden!r}")
        w.make_node(parts[:-1] + [hidden], stat.S_IFCHR | 0o000, m, entry)
        return
    if m.isdir():
        w.make_dir(parts, m, entry)
        return
    if not parts:
        raise UnsafeArchive(entry, "a non-directory entry would replace the layer root")
    if m.issparse():
        raise UnsafeArchive(entry, "sparse files are not supported")
    if m.isreg():
        data = tf.extractfile(m)
        assert data is not None
        w.make_file(parts, m, data, entry)
    elif m.issym():
        w.make_symlink(parts, m, entry)
    elif m.islnk():
        w.make_hardlink(parts, m, entry)
    elif m.ischr() and m.devmajor == 0 and m.devminor == 0:
        w.make_node(parts, stat.S_IFCHR, m, entry)  # already an overlayfs whiteout
    elif m.isfifo():
        w.make_node(parts, stat.S_IFIFO, m, entry)
    elif m.ischr() or m.isblk():
        return  # device nodes are dropped: /dev comes from the runtime
    else:
        raise UnsafeArchive(entry, f"unsupported entry type {m.type!r}")


def _data_path(m: tarfile.TarInfo) -> str | None:
    """Where a member's data ends up in the layer, if it is kept as a regular file."""
    if not m.isreg() or m.size <= 0:
        return None
    try:
        parts = _components(m.name, m.name)
    except UnsafeArchive:
        return None  # _extract_member refuses it
    if not parts or parts[-1].startswith(WHITEOUT_PREFIX):
        return None
    return "/".join(parts)


def extract_layer(
    fileobj: IO[bytes], dest: Path, *, max_bytes: int = MAX_LAYER_BYTES,
    split_path: str | None = None,
) -> Extracted:
    """Extracts a (compressed) layer tar into ``dest``, which must not exist yet.

    ``dest`` appears whole or not at all. Raises ``UnsafeArchive`` on any bad entry,
    on an uncompressed size over ``max_bytes``, or on input that is not a tar.
    With ``split_path``, also writes the layer's tar-split there (see tarsplit.py).
    """
    dest = Path(dest)
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:12]}"
    os.mkdir(tmp, 0o700)
    entry = ARCHIVE
    recorder: Recorder | None = None
    try:
        os.chmod(tmp, 0o755)  # the layer root, unless the archive has a "." entry
        recorder = Recorder(split_path) if split_path else None
        reader = _HashingReader(open_decompressed(fileobj), max_bytes, recorder)
        walker = _Walker(tmp)
        try:
            try:
                with tarfile.open(fileobj=reader, mode="r|") as tf:
                    for m in tf:
                        entry = m.name
                        if reader.total + m.size > max_bytes:
                            raise _SizeCapExceeded()
                        if recorder is not None and (rel := _data_path(m)) is not None:
                            recorder.file(rel, m.offset_data, m.size)
                        _extract_member(walker, tf, m)
                    entry = ARCHIVE
                reader.drain()
                walker.finish()
                if recorder is not None:
                    recorder.close()
            except _SizeCapExceeded:
                raise UnsafeArchive(
                    entry, f"archive exceeds {max_bytes} bytes uncompressed"
                ) from None
            except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as e:
                raise UnsafeArchive(entry, f"not a valid tar archive: {e}") from e
            except OSError as e:
                raise UnsafeArchive(entry, f"cannot extract: {e.strerror or e}") from e
        finally:
            walker.close()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if recorder is not None:
            recorder.abort()
        raise
    return Extracted(diff_id="sha256:" + reader.sha.hexdigest(), size=walker.size,
                     tar_size=reader.total)
