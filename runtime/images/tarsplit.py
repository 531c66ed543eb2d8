"""Tar-split: the bytes of a layer tarball minus its file contents, so the exact tarball
(and so its diff_id) can be rebuilt from the extracted layer for ``box save``/``push``.

The layer is kept on disk once, extracted; the tarball is not. What is kept is every
header, padding and end-of-archive byte, plus "N bytes of file P" references, in a
small gzip'd JSON-lines file next to the layer (Docker keeps the same thing, in the
vbatts/tar-split format). Rebuilding reads each referenced file through an
``O_NOFOLLOW`` walk of the layer, so a symlink planted by the archive can never pull a
host file into a saved or pushed image; the caller checks the result against the diff_id.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import stat
from collections.abc import Iterator

from runtime.errors import BoxError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024


class LayerUnavailable(BoxError):
    """A layer's tarball cannot be rebuilt (no tar-split, or its files changed)."""


class Recorder:
    """Fed every byte of the uncompressed stream in order, and told (before its data is
    read) where each regular file's data lies; writes the tar-split to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._out = gzip.open(path, "wb", compresslevel=1)
        self._pending = bytearray()  # unclassified bytes, starting at stream offset _start
        self._start = 0
        self._drop_until = 0  # stream offset up to which bytes are file data (not kept)

    def feed(self, pos: int, data: bytes) -> None:
        """``data`` begins at stream offset ``pos`` (contiguous with earlier feeds)."""
        if pos < self._drop_until:
            skip = min(len(data), self._drop_until - pos)
            data = data[skip:]
            pos += skip
            if not data:
                return
            self._start = pos
        self._pending += data

    def file(self, rel: str, offset_data: int, size: int) -> None:
        """The member at ``rel`` has ``size`` data bytes starting at ``offset_data``."""
        if size <= 0:
            return
        head = offset_data - self._start
        if head < 0:
            raise LayerUnavailable(f"tar-split lost track at offset {offset_data}")
        self._segment(bytes(self._pending[:head]))
        self._write({"f": rel, "n": size})
        end = offset_data + size
        already = len(self._pending) - head  # data bytes tarfile read ahead
        if already >= size:
            self._pending = self._pending[head + size:]
            self._start = end
        else:
            self._pending = bytearray()
            self._start = end
        self._drop_until = end

    def close(self) -> None:
        """After the whole stream was fed: keeps the tail (end-of-archive blocks)."""
        self._segment(bytes(self._pending))
        self._pending = bytearray()
        self._out.close()

    def abort(self) -> None:
        self._out.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _segment(self, data: bytes) -> None:
        if data:
            self._write({"r": base64.b64encode(data).decode()})

    def _write(self, item: dict[str, object]) -> None:
        self._out.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")


def _open_in_layer(layer_dir: str, rel: str) -> int:
    """fd of the regular file ``rel`` inside ``layer_dir``; no component may be a link."""
    parts = [p for p in rel.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise LayerUnavailable(f"tar-split names a bad path {rel!r}")
    fd = os.open(layer_dir, _DIR_FLAGS)
    try:
        for comp in parts[:-1]:
            nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError as e:
        raise LayerUnavailable(f"layer file {rel!r}: {e.strerror}") from None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(ffd).st_mode):
        os.close(ffd)
        raise LayerUnavailable(f"layer file {rel!r} is not a regular file")
    return ffd


def iter_tarball(layer_dir: str, split_path: str) -> Iterator[bytes]:
    """The layer's original tar stream, in chunks. Callers verify the digest."""
    try:
        f = gzip.open(split_path, "rb")
    except FileNotFoundError:
        raise LayerUnavailable(f"no tar-split for layer {os.path.basename(layer_dir)}") from None
    with f:
        for line in io.BufferedReader(f):
            item = json.loads(line)
            if "r" in item:
                yield base64.b64decode(item["r"])
                continue
            rel, left = item["f"], int(item["n"])
            fd = _open_in_layer(layer_dir, rel)
            try:
                while left:
                    chunk = os.read(fd, min(_CHUNK, left))
                    if not chunk:
                        raise LayerUnavailable(f"layer file {rel!r} is shorter than recorded")
                    left -= len(chunk)
                    yield chunk
            finally:
                os.close(fd)


class TarballReader(io.RawIOBase):
    """``iter_tarball`` as a file object (for tarfile.addfile and HTTP bodies)."""

    def __init__(self, layer_dir: str, split_path: str) -> None:
        self._it = iter_tarball(layer_dir, split_path)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(buf), len(self._buf))
        buf[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
