"""The crash-safe offset registry: how far each file has been shipped.

One JSON file (``--registry``), rewritten whole each time (temp file, fsync, rename, fsync
of the directory), so a crash leaves either the old or the new version, never a torn one.
It is written only after the sinks acknowledged a batch, with two offsets per file:

- ``acked``: every entry ending at or before it was delivered;
- ``resume``: where reading restarts; before ``acked`` when an entry was still being joined
  (a partial line, a multiline group) at that time. Entries re-read between ``resume`` and
  ``acked`` are skipped, so a restart neither loses nor repeats them.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import orjson

from formats.atomicfile import write_atomic as _write_atomic

FORMAT_VERSION = 1


class RegistryError(Exception):
    """The registry file exists but cannot be used (not ours, or corrupt)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"registry {path}: {reason}")
        self.path = path


@dataclass(slots=True)
class Entry:
    """One file's progress. Its key is ``"<dev>:<ino>:<fingerprint>"``: an inode is reused
    as soon as its file is deleted, and the entry of the old file must survive that (its
    ``.gz`` copy is recognised by content through it)."""

    path: str
    fingerprint: str
    resume: int
    acked: int
    updated: float  # wall-clock seconds of the last change (for forgetting old entries)
    done: bool = False  # rotated away and read to its end: never read again


def file_key(dev: int, ino: int, fingerprint: str) -> str:
    return f"{dev}:{ino}:{fingerprint}"


def key_identity(key: str) -> tuple[int, int]:
    """(dev, ino) of an entry key."""
    dev, ino, _ = key.split(":", 2)
    return int(dev), int(ino)


class Registry:
    """The in-memory registry plus its file. Not thread-safe: the pipeline owns it, and
    ``save`` may run in a worker thread only while nothing else touches it (it snapshots
    first: see :meth:`snapshot`)."""

    def __init__(self, path: str, forget_after: float = 24 * 3600,
                 keep_done_per_dir: int = 32) -> None:
        self.path = path
        self.forget_after = forget_after
        self.keep_done_per_dir = keep_done_per_dir
        self.entries: dict[str, Entry] = {}
        self.saves = 0

    def load(self) -> None:
        """Read the file if it exists; a missing file is an empty registry."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        try:
            obj = orjson.loads(data)
            if obj.get("version") != FORMAT_VERSION:
                raise RegistryError(self.path, f"unknown version {obj.get('version')!r}")
            self.entries = {k: Entry(**v) for k, v in obj["files"].items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise RegistryError(self.path, f"corrupt: {err}") from None

    def get(self, dev: int, ino: int, fingerprint: str | None) -> Entry | None:
        if not fingerprint:
            return None
        return self.entries.get(file_key(dev, ino, fingerprint))

    def key_of(self, entry: Entry) -> str:
        for k, e in self.entries.items():
            if e is entry:
                return k
        raise KeyError(entry.path)

    def update(self, dev: int, ino: int, path: str, fingerprint: str, resume: int,
               acked: int, done: bool = False) -> None:
        """Record progress (only ever forward: acknowledgements come in order)."""
        key = file_key(dev, ino, fingerprint)
        old = self.entries.get(key)
        if old is not None and (old.acked > acked or old.done and not done):
            return
        self.entries[key] = Entry(path, fingerprint, resume, acked, time.time(), done)
        if done:
            self._trim(os.path.dirname(path))

    def _trim(self, directory: str) -> None:
        """Keep the newest ``keep_done_per_dir`` finished entries of a directory (enough
        to recognise every rotation Docker keeps, ``max-file`` of them)."""
        done = [(e.updated, k) for k, e in self.entries.items()
                if e.done and os.path.dirname(e.path) == directory]
        if len(done) > self.keep_done_per_dir:
            done.sort()
            for _, k in done[:len(done) - self.keep_done_per_dir]:
                del self.entries[k]

    def expire(self, now: float | None = None) -> int:
        """Drop entries unchanged for ``forget_after`` seconds; returns how many went."""
        now = time.time() if now is None else now
        old = [k for k, e in self.entries.items() if now - e.updated > self.forget_after]
        for k in old:
            del self.entries[k]
        return len(old)

    def snapshot(self) -> bytes:
        """The file's content as of now (cheap; call in the loop, write elsewhere)."""
        return orjson.dumps({"version": FORMAT_VERSION,
                             "files": {k: asdict(e) for k, e in self.entries.items()}})

    def save(self, data: bytes | None = None) -> None:
        """Write ``data`` (default: a fresh snapshot) atomically and durably."""
        if data is None:
            data = self.snapshot()
        write_atomic(self.path, data)
        self.saves += 1


def write_atomic(path: str, data: bytes) -> None:
    """The registry file, 0600, through the one atomic durable write (formats.atomicfile)."""
    _write_atomic(path, data, 0o600)
