"""Safe extraction of one layer tarball, with its diff_id computed on the way.

Our own walk, not ``tarfile``'s extraction filters (3.11.7's have known bypasses):
tarfile only iterates members and reads their data, and ``layerfs.Walker`` creates
each entry without ever following a link on the host. This module reads the stream
(decompression by magic bytes, the hash, the size cap) and decides what each member
becomes (whiteouts, opaque dirs, links, nodes). The layer is built in a temp dir next
to ``dest`` and renamed into place only when the whole archive was good; on any bad
entry it is removed and ``UnsafeArchive`` names the entry.
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

from runtime.images.layerfs import UnsafeArchive, Walker, components
from runtime.images.tarsplit import Recorder

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_CHUNK = 1024 * 1024

ARCHIVE = "<archive>"  # entry name used for stream-level problems


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


def _extract_member(w: Walker, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
    entry = m.name
    parts = components(m.name, entry)
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
        parts = components(m.name, m.name)
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
        walker = Walker(tmp)
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
