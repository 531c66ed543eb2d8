"""One open log file: :class:`Tailer` reads it in chunks from where the registry says,
feeds whole lines to its decoder, and notices at EOF what happened to it: rotated away
(its path names another file: read to the end, then finish), truncated in place
(copytruncate: size below our position or a different first line), or moved. ``.gz``
rotations are read through :class:`Gz` at decompressed offsets.
"""

from __future__ import annotations

import gzip
import os
import time
import zlib
from dataclasses import replace

from shipper.parse.decode import FileDecoder
from shipper.records import Record
from shipper.sources.fingerprint import FP_BYTES, fingerprint_fd, same_content

READ_CHUNK = 256 * 1024


class Gz:
    """A ``.gz`` rotation read like a plain file, at decompressed offsets."""

    def __init__(self, path: str) -> None:
        self.f = gzip.open(path, "rb")

    def pread(self, n: int, pos: int) -> bytes:
        try:
            if self.f.tell() != pos:
                self.f.seek(pos)
            return self.f.read(n)
        except (OSError, EOFError, zlib.error):  # cut short: what there is, is all there is
            return b""

    def close(self) -> None:
        self.f.close()


class Tailer:
    """One open file: reads it in chunks and feeds whole lines to its decoder."""

    def __init__(self, path: str, fd: int, dev: int, ino: int, fp: str | None,
                 decoder: FileDecoder, container_dir: str | None, start: int,
                 rotated: bool = False, gz: Gz | None = None, max_pending: int = 0,
                 poll_interval: float = 0.1) -> None:
        self.path = path
        self.fd = fd
        self.gz = gz
        self.dev, self.ino = dev, ino  # the identity of the content (registry, record ids)
        st = os.fstat(fd)
        self.fkey = (st.st_dev, st.st_ino)  # the open file itself (unique among open fds)
        self.fp = fp
        self.decoder = decoder
        self.container_dir = container_dir
        self.pos = start
        self.buf = b""
        self.discarding = False
        self.rotated = rotated
        self.finished = False  # rotated and read to the end: waiting for acks, then closed
        self.moved = False  # seen at EOF no longer at its path (a rescan will mark it rotated)
        self.closed = False
        self.acked = start  # what the registry holds (entries acknowledged up to here)
        self.acked_ns = 0  # time of the last acknowledged entry
        self.next_poll = 0.0
        self.last_data = time.monotonic()
        self.mark: tuple[int, int] = (-1, -1)  # watermarks at the last checkpoint
        self.truncations = 0
        self.truncated_from: tuple[str | None, FileDecoder, int, bytes] | None = None
        self.max_pending = max_pending
        self.poll_interval = poll_interval  # an idle file is read again after this long
        decoder.consumed = start

    def pread(self, n: int, pos: int) -> bytes:
        if self.gz is not None:
            return self.gz.pread(n, pos)
        return os.pread(self.fd, n, pos)

    def size(self) -> int:
        return -1 if self.gz is not None else os.fstat(self.fd).st_size

    def read(self, out: list[Record], limit: int = READ_CHUNK) -> int:
        """Read up to ``limit`` bytes; whole lines become records in ``out``. 0 at EOF."""
        data = self.pread(limit, self.pos)
        if not data:
            self._at_eof(out)
            return 0
        n = len(data)
        self.pos += n
        self.last_data = time.monotonic()
        if self.discarding:  # the rest of a line too long to keep
            nl = data.find(b"\n")
            if nl < 0:
                self.decoder.consumed = self.pos
                return n
            data = data[nl + 1:]
            self.discarding = False
            self.decoder.consumed = base = self.pos - len(data)
        else:
            base = self.pos - n - len(self.buf)
            if self.buf:
                data = self.buf + data
        lines = data.split(b"\n")
        self.buf = lines.pop()
        if lines:
            if self.fp is None:
                self._set_fingerprint()
            self.decoder.feed(lines, base, out)
        if len(self.buf) > self.max_pending:
            end = self.pos
            self.decoder.oversize(self.buf[:self.decoder.max_line_bytes], end - len(self.buf),
                                  end, out)
            self.buf = b""
            self.discarding = True
        return n

    def _set_fingerprint(self) -> None:
        self.fp = fingerprint_fd(self.fd) if self.gz is None else self.fp
        if self.fp is not None:
            self.decoder.origin = replace(self.decoder.origin, fingerprint=self.fp)

    def _at_eof(self, out: list[Record]) -> None:
        now = time.monotonic()
        if self.rotated:
            if self.gz is None and self.path == self.decoder.path and names(self.path, self.fkey):
                self.rotated = self.moved = False  # a scan raced a rotation: still live
            else:
                self.decoder.finish(self.buf, out)
                self.pos = self.decoder.consumed
                self.buf = b""
                self.finished = True
                return
        self.next_poll = now + self.poll_interval
        if self.gz is not None:
            return
        if not self.moved and not names(self.path, self.fkey):
            self.moved = True  # rotated or removed: the reader rescans at once
        if self.size() < self.pos or (self.fp is not None and not same_head(self.fd, self.fp)):
            self.restart_truncated()

    def restart_truncated(self) -> None:
        """copytruncate: the same inode holds new content; read it from 0 as a new file.
        The old content's state is kept in ``truncated_from`` for the reader to finish it
        from the copy (the lines written after our last read exist only there)."""
        self.truncations += 1
        old = self.decoder
        self.truncated_from = (self.fp, old, self.pos, self.buf)
        self.pos = self.acked = 0
        self.buf = b""
        self.discarding = False
        self.decoder = FileDecoder(old.path, replace(old.origin, fingerprint=""),
                                   old.max_line_bytes, old.multiline_re,
                                   old.flush_timeout, old.multiline_timeout, old.fmt)
        self.decoder.consumed = 0
        self.fp = None
        self.mark = (-1, -1)

    @property
    def done(self) -> bool:
        """Finished and every entry acknowledged: safe to close."""
        return self.finished and self.acked >= self.decoder.consumed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.gz is not None:
                self.gz.close()
            os.close(self.fd)


def names(path: str, key: tuple[int, int]) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == key


def same_head(fd: int, fp: str) -> bool:
    return same_content(fp, os.pread(fd, FP_BYTES, 0))
