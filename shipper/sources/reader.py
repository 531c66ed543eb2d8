"""Tailing: one :class:`Tailer` per open file, and the :class:`Reader` that keeps the set
in step with the disk (new containers, rotations, removals, copytruncate).

Rotation, as dockerd does it (rename ``-json.log`` to ``.1``, open a new one): the old
file stays open here and is read to its end through the same fd, then closed once its
lines are acknowledged, so a rotated-and-deleted file (``max-file=1``) loses nothing. A
rotated file this process never saw (several rotations while it was down or between two
scans) is read from its start; one it saw is recognised by inode or, once gzipped, by the
fingerprint of its content, and never read twice (a ``.gz`` is read only when it holds
a file never seen, or one the registry says was cut short). After copytruncate the live
file restarts at 0 under a new fingerprint and the old content is finished from the copy.
At the very first start (empty registry), rotated files are history and are not read.
Finding the unread rotations is ``rotation.Rotations``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from shipper.enrich import ContainerMeta, MetadataCache
from shipper.parse.decode import FileDecoder
from shipper.parse.partial import DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_LINE_BYTES
from shipper.records import Origin, Record
from shipper.sources.checkpoint import Entry, Registry, key_identity
from shipper.sources.fingerprint import FP_BYTES, fingerprint_fd, head_fingerprint
from shipper.sources.paths import Discovery, LogFile, meta_from_path
from shipper.sources.rotation import Rotations
from shipper.sources.tailer import READ_CHUNK, Gz, Tailer, same_head

log = logging.getLogger(__name__)

@dataclass
class ReaderOptions:
    """Knobs of the tailers (CLI flags)."""

    host: str = ""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    multiline: re.Pattern[str] | None = None
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    multiline_timeout: float = 2.0
    poll_interval: float = 0.1  # an idle file is read again after this long
    max_rotated_open: int = 64  # rotated files held open at most (oldest dropped beyond)
    close_inactive: float = 300.0  # a live file idle and shipped this long is closed


Checkpoint = tuple[Tailer, int, int, int]  # (tailer, resume, acked, time_ns of last entry)


class Reader:
    """All open tailers, kept in step with discovery; see the module docstring."""

    def __init__(self, discovery: Discovery, registry: Registry, metadata: MetadataCache,
                 options: ReaderOptions | None = None) -> None:
        self.discovery = discovery
        self.registry = registry
        self.metadata = metadata
        self.opt = options or ReaderOptions()
        self.tailers: dict[tuple[int, int], Tailer] = {}
        self.live: dict[str, Tailer] = {}  # live path -> its tailer
        # live files closed after close_inactive, with what they looked like then
        self.parked: dict[str, tuple[tuple[int, int], int, int]] = {}
        self.known_dirs: set[str] = set()  # directories of logs seen by this process
        self.scans = 0
        self.want_rescan = False  # a file was seen rotated: rescan before the next read
        self.dropped_rotated = 0  # rotated files given up (too many held)
        self.dropped_bytes = 0
        self.closed_lines = 0  # lines / parse errors of tailers already closed
        self.closed_errors = 0
        self.rotations = Rotations(registry)
        self._cursor = 0

    # --- discovery ------------------------------------------------------------------------

    def rescan(self) -> None:
        """Open new files, mark rotated/removed ones, refresh metadata."""
        first = self.scans == 0
        self.scans += 1
        self.want_rescan = False
        seen: set[str] = set()
        for lf in self.discovery.scan():
            seen.add(lf.path)
            try:
                st = os.stat(lf.path)
            except FileNotFoundError:
                continue
            key = (st.st_dev, st.st_ino)
            t = self.live.get(lf.path)
            if t is not None and t.fkey == key:
                self._refresh_origin(t, lf)
                continue
            if t is not None:  # rotated: keep reading the old inode to its end
                t.rotated = True
                del self.live[lf.path]
                log.debug("rotated %s (inode %d -> %d)", lf.path, t.fkey[1], key[1])
            directory = os.path.dirname(lf.path)
            known = (directory in self.known_dirs or not first
                     or any(os.path.dirname(e.path) == directory
                            for e in self.registry.entries.values()))
            self.known_dirs.add(directory)
            if known:
                for path, entry, gz in self.rotations.unread(lf.path, self.tailers):
                    self._open(path, lf, rotated=True, entry=entry, gz=gz)
            if key in self.tailers:  # e.g. a rotated file renamed back
                self.live[lf.path] = self.tailers[key]
                continue
            if self.parked.get(lf.path) == (key, st.st_size, st.st_mtime_ns):
                continue  # closed while idle and fully shipped, unchanged since
            self.parked.pop(lf.path, None)
            t = self._open(lf.path, lf, rotated=False)
            if t is not None:
                self.live[lf.path] = t
        for path in [p for p in self.parked if p not in seen]:
            del self.parked[path]
        for path in [p for p in self.live if p not in seen]:
            self.live.pop(path).rotated = True  # removed (or mid-rotation): read to the end
        self._bound_rotated()
        self.registry.expire()

    def _refresh_origin(self, t: Tailer, lf: LogFile) -> None:
        if lf.container_dir is None:
            return
        meta = self.metadata.get(lf.container_dir)
        o = t.decoder.origin
        if (meta.id, meta.name, meta.image, meta.labels) != (
                o.container_id, o.container_name, o.image, o.labels):
            t.decoder.origin = replace(o, container_id=meta.id, container_name=meta.name,
                                       image=meta.image, labels=meta.labels)

    def _meta(self, lf: LogFile) -> ContainerMeta:
        if lf.container_dir is not None:
            return self.metadata.get(lf.container_dir)
        return meta_from_path(lf.path)

    def _open(self, path: str, lf: LogFile, rotated: bool, entry: Entry | None = None,
              gz: bool = False) -> Tailer | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, PermissionError):
            return None
        st = os.fstat(fd)
        dev, ino = st.st_dev, st.st_ino
        gzr = None
        start = skip = 0
        if gz:
            gzr = Gz(path)
            head = gzr.pread(FP_BYTES, 0)
            fp = entry.fingerprint if entry is not None else head_fingerprint(head)
            if entry is not None:  # keep the identity the records had before compression
                dev, ino = key_identity(self.registry.key_of(entry))
        else:
            fp = fingerprint_fd(fd)
            if entry is None:
                entry = self.registry.get(dev, ino, fp)
            if entry is not None and entry.fingerprint != fp:
                entry = None
        if (st.st_dev, st.st_ino) in self.tailers:
            os.close(fd)
            if gzr is not None:
                gzr.close()
            return None
        if entry is not None:
            start, skip = entry.resume, entry.acked
        meta = self._meta(lf)
        origin = Origin(meta.id, meta.name, meta.image, meta.labels, self.opt.host, path,
                        dev, ino, fp or "")
        o = self.opt
        dec = FileDecoder(lf.path, origin, o.max_line_bytes, o.multiline, o.flush_timeout,
                          o.multiline_timeout)
        dec.skip = skip
        t = Tailer(path, fd, dev, ino, fp, dec, lf.container_dir, start, rotated, gzr,
                   max_pending=4 * o.max_line_bytes + (64 << 10), poll_interval=o.poll_interval)
        t.acked = max(start, 0)
        self.tailers[t.fkey] = t
        log.debug("open %s at %d (skip to %d)%s%s", path, start, skip,
                  " rotated" if rotated else "", " gz" if gz else "")
        return t

    def _bound_rotated(self) -> None:
        held = [t for t in self.tailers.values() if t.rotated and not t.closed]
        while len(held) > self.opt.max_rotated_open:
            t = held.pop(0)
            if not t.finished:
                size = t.size()
                self.dropped_bytes += max(size - t.pos, 0) if size >= 0 else 0
            self.dropped_rotated += 1
            self._close(t)

    # --- reading --------------------------------------------------------------------------

    def read_round(self, out: list[Record], budget: int) -> int:
        """One pass: a chunk from each file that is due, rotated files first, the rest in
        turn from a moving start (fairness), until ``budget`` bytes. Returns bytes read."""
        now = time.monotonic()
        rotated = [t for t in self.tailers.values() if t.rotated and not t.finished]
        live = [t for t in self.tailers.values() if not t.rotated]
        if live:
            self._cursor %= len(live)
            live = live[self._cursor:] + live[:self._cursor]
            self._cursor += 1
        total = 0
        for t in rotated + live:
            if total >= budget:
                break
            if t.next_poll > now and not t.rotated:
                continue
            total += t.read(out, min(READ_CHUNK, max(budget - total, 64 << 10)))
            if t.truncated_from is not None:
                self._finish_copy(t, out)
            if t.moved and not t.rotated:
                self.want_rescan = True
        return total

    def _finish_copy(self, t: Tailer, out: list[Record]) -> None:
        """After copytruncate, read the old content's rest from the copy (a sibling that
        starts like it); without one, the rest is flushed as it is."""
        fp, dec, pos, buf = t.truncated_from
        t.truncated_from = None
        for path in Discovery.rotated(t.path):
            if path.endswith(".gz") or fp is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) not in self.tailers and st.st_size >= pos \
                    and same_head(fd, fp):
                copy = Tailer(path, fd, st.st_dev, st.st_ino, fp, dec, t.container_dir, pos,
                              rotated=True, max_pending=t.max_pending,
                              poll_interval=t.poll_interval)
                copy.decoder.consumed = pos - len(buf)
                copy.buf = buf
                copy.acked = t.acked
                self.tailers[copy.fkey] = copy
                return
            os.close(fd)
        dec.finish(buf, out)

    def flush_due(self, out: list[Record]) -> None:
        """Emit partial/multiline joins whose timeout passed."""
        now = time.monotonic()
        for t in self.tailers.values():
            if t.decoder.active or t.decoder.multi is not None:
                t.decoder.flush_due(out, now)

    def next_due(self) -> float:
        """Monotonic time when some file should be polled again."""
        due = [t.next_poll for t in self.tailers.values() if not t.finished]
        return min(due) if due else time.monotonic() + self.opt.poll_interval

    # --- acknowledgements -----------------------------------------------------------------

    def checkpoints(self) -> list[Checkpoint]:
        """Watermarks of the files that moved since the last call (taken when a batch is
        cut: they become true once that batch is acknowledged)."""
        result = []
        for t in self.tailers.values():
            if t.closed:
                continue
            mark = t.decoder.watermarks()
            if mark != t.mark or (t.finished and t.acked < t.decoder.consumed):
                t.mark = mark
                result.append((t, mark[0], mark[1], t.decoder.last_ns))
        return result

    def acknowledge(self, checkpoints: list[Checkpoint]) -> None:
        """A batch was delivered: advance the registry for its checkpoints."""
        for t, resume, acked, last_ns in checkpoints:
            t.acked = max(t.acked, acked)
            t.acked_ns = max(t.acked_ns, last_ns)
            if t.fp is not None:
                done = t.finished and t.acked >= t.decoder.consumed
                self.registry.update(t.dev, t.ino, t.path, t.fp, resume, acked, done)

    def reap(self) -> None:
        """Close finished files whose entries are all acknowledged, and idle live ones."""
        for t in [t for t in self.tailers.values() if t.done]:
            if t.fp is not None:
                self.registry.update(t.dev, t.ino, t.path, t.fp, t.decoder.consumed,
                                     t.decoder.consumed, True)
            self._close(t)
        self._close_inactive()

    def _close_inactive(self) -> None:
        limit = time.monotonic() - self.opt.close_inactive
        for path, t in list(self.live.items()):
            if (t.last_data < limit and not t.buf and t.acked >= t.decoder.consumed
                    and not t.decoder.active and t.decoder.multi is None):
                st = os.fstat(t.fd)
                if st.st_size == t.pos:
                    del self.live[path]
                    self.parked[path] = (t.fkey, st.st_size, st.st_mtime_ns)
                    self._close(t)

    def _close(self, t: Tailer) -> None:
        t.close()
        self.closed_lines += t.decoder.lines
        self.closed_errors += t.decoder.parse_errors
        self.tailers.pop(t.fkey, None)
        if self.live.get(t.path) is t:
            del self.live[t.path]

    def close(self) -> None:
        for t in list(self.tailers.values()):
            self._close(t)

    # --- numbers --------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(lines read, parse errors) over every file ever opened."""
        lines, errors = self.closed_lines, self.closed_errors
        for t in self.tailers.values():
            lines += t.decoder.lines
            errors += t.decoder.parse_errors
        return lines, errors

    def lag(self, now_ns: Callable[[], int] = time.time_ns) -> list[tuple[str, int, float]]:
        """(path, bytes written but not acknowledged, seconds between the last write and
        the last acknowledged entry) per open file."""
        result = []
        for t in self.tailers.values():
            size = t.size() if not t.closed else -1
            if size < 0:
                continue
            behind = max(size - t.acked, 0)
            secs = 0.0
            if behind:
                mtime = os.fstat(t.fd).st_mtime_ns
                secs = max(mtime - t.acked_ns, 0) / 1e9 if t.acked_ns else 0.0
            result.append((t.path, behind, secs))
        return result

    @property
    def open_files(self) -> int:
        return len(self.tailers)

    @property
    def rotated_open(self) -> int:
        return sum(1 for t in self.tailers.values() if t.rotated)

