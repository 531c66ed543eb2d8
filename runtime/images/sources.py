"""Read-only views of an image archive: a tarball (``docker save``, ``oci-archive``) or a
directory (an OCI layout, skopeo's ``dir:``), addressed by in-archive paths.

Nothing here extracts the outer archive to disk: members are read in place. Every path a
manifest names is cleaned first; an absolute path, a ``..`` that leaves the archive, or a
symlink whose target does, is refused with the path, so a manifest can never make
``box load`` read a host file.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from typing import IO

from runtime.errors import InvalidArgument

MAX_METADATA = 8 * 1024 * 1024  # manifest.json, index.json, configs: read whole, so capped
_MAX_LINKS = 16


class LoadError(InvalidArgument):
    """An image archive ``box load`` refuses; the message names the file at fault."""


def clean(path: str, what: str) -> str:
    """``./a//b`` -> ``a/b``; refuses absolute paths and ``..`` that climb out."""
    if path.startswith("/"):
        raise LoadError(f"{what}: absolute path {path!r} is not inside the archive")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise LoadError(f"{what}: path {path!r} leaves the archive")
            out.pop()
            continue
        out.append(part)
    if not out:
        raise LoadError(f"{what}: empty path {path!r}")
    return "/".join(out)


class Source:
    """What the loader needs from an archive."""

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def size(self, path: str) -> int:
        raise NotImplementedError

    def open(self, path: str) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def read_small(self, path: str) -> bytes:
        if self.size(path) > MAX_METADATA:
            raise LoadError(f"{path}: metadata file larger than {MAX_METADATA} bytes")
        with self.open(path) as f:
            return f.read(MAX_METADATA + 1)

    def read_verified(self, path: str, digest: str | None) -> bytes:
        """A small blob, checked against ``sha256:<hex>`` when the caller knows it."""
        data = self.read_small(path)
        if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise LoadError(f"{path}: content does not match digest {digest}")
        return data


class TarSource(Source):
    """A tar archive read in place (random access; stdin is spooled by the caller)."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._f = fileobj
        try:
            self._tf = tarfile.open(fileobj=fileobj, mode="r:")
            members = self._tf.getmembers()
        except (tarfile.TarError, EOFError) as e:
            fileobj.close()
            raise LoadError(f"<archive>: not a tar archive: {e}") from None
        self._members: dict[str, tarfile.TarInfo] = {}
        for m in members:
            try:
                self._members[clean(m.name, "archive entry")] = m
            except LoadError:
                continue  # never addressable: a manifest naming it is refused by clean()

    def _resolve(self, path: str) -> tarfile.TarInfo:
        seen = 0
        name = clean(path, "archive path")
        while True:
            m = self._members.get(name)
            if m is None:
                raise LoadError(f"{path}: not in the archive")
            if m.isreg():
                return m
            if not (m.issym() or m.islnk()) or seen >= _MAX_LINKS:
                raise LoadError(f"{path}: not a regular file in the archive")
            seen += 1
            base = "" if m.islnk() else os.path.dirname(name)  # hard links name from the root
            target = m.linkname
            if target.startswith("/"):
                raise LoadError(f"{path}: link to absolute path {target!r}")
            name = clean(f"{base}/{target}" if base else target, f"{path} (link target)")

    def exists(self, path: str) -> bool:
        try:
            self._resolve(path)
        except LoadError:
            return False
        return True

    def size(self, path: str) -> int:
        return self._resolve(path).size

    def open(self, path: str) -> IO[bytes]:
        f = self._tf.extractfile(self._resolve(path))
        assert f is not None
        return f

    def close(self) -> None:
        self._tf.close()
        self._f.close()


class DirSource(Source):
    """A directory on the host (an OCI layout); no path may resolve outside it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def _path(self, path: str) -> str:
        full = os.path.realpath(os.path.join(self.root, clean(path, "layout path")))
        if full != self.root and not full.startswith(self.root + "/"):
            raise LoadError(f"{path}: resolves outside the layout directory")
        return full

    def exists(self, path: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self._path(path)).st_mode)
        except (OSError, LoadError):
            return False

    def size(self, path: str) -> int:
        try:
            return os.stat(self._path(path)).st_size
        except OSError as e:
            raise LoadError(f"{path}: {e.strerror}") from None

    def open(self, path: str) -> IO[bytes]:
        full = self._path(path)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise LoadError(f"{path}: {e.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LoadError(f"{path}: not a regular file")
        return open(fd, "rb")


class DigestReader(io.RawIOBase):
    """Passes a blob through while hashing and counting it (for digest checks)."""

    def __init__(self, src: IO[bytes], on_read: object = None) -> None:
        self._src = src
        self.sha = hashlib.sha256()
        self.count = 0
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self._src.read(len(buf))
        n = len(data)
        if n:
            buf[:n] = data
            self.sha.update(data)
            self.count += n
            if self._on_read is not None:
                self._on_read(self.count)
        return n

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()
