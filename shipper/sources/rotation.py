"""Which rotated siblings of a live log file are still unread, oldest first, and how
each is known: by inode and fingerprint in the registry, or, once gzipped, by the
fingerprint of its content (a ``.gz`` is read only when it holds a file never seen or
one the registry says was cut short). Apart from the reader, which opens and reads what
this finds.
"""

from __future__ import annotations

import os

from shipper.sources.checkpoint import Entry, Registry
from shipper.sources.fingerprint import FP_BYTES, gzip_head, head_fingerprint, same_content
from shipper.sources.paths import Discovery
from shipper.sources.tailer import Tailer


class Rotations:
    """Finds unread rotations for the reader; remembers the heads of ``.gz`` files so a
    scan does not decompress the same file again."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._gz_heads: dict[tuple[int, int, int, int], bytes | None] = {}

    def unread(self, live: str, tailers: dict[tuple[int, int], Tailer]
               ) -> list[tuple[str, Entry | None, bool]]:
        """Rotated siblings of ``live`` not yet read, oldest first: walking from the newest,
        everything up to the first file this process has open or has finished."""
        todo: list[tuple[str, Entry | None, bool]] = []
        for path in Discovery.rotated(live):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if path.endswith(".gz"):
                head = self._gz_head(path, st)
                if head is None:
                    continue
                key = None
            else:
                key = (st.st_dev, st.st_ino)
                if key in tailers:
                    break
                try:
                    with open(path, "rb") as f:
                        head = f.read(FP_BYTES)
                except FileNotFoundError:
                    continue
            if any(t.fp and same_content(t.fp, head) for t in tailers.values()):
                break  # a copy of a file being read (copytruncate, or gzip of it)
            entry = (self.registry.get(*key, head_fingerprint(head))
                     if key is not None else None)
            if entry is None:
                entry = self._by_content(head)
            if entry is None:
                todo.append((path, None, key is None))
                continue
            if entry.done:
                break
            todo.append((path, entry, key is None))
        return todo[::-1]

    def _by_content(self, head: bytes) -> Entry | None:
        for e in self.registry.entries.values():
            if e.fingerprint and same_content(e.fingerprint, head):
                return e
        return None

    def _gz_head(self, path: str, st: os.stat_result) -> bytes | None:
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # inodes are reused
        if key not in self._gz_heads:
            head = gzip_head(path)
            if head is None or len(head) < FP_BYTES and b"\n" not in head:
                return None  # still being written: try at the next scan
            if len(self._gz_heads) > 4096:
                self._gz_heads.clear()
            self._gz_heads[key] = head
        return self._gz_heads[key]
