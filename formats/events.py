"""Docker's event stream as an append-only journal in the state root, written by the
processes that cause each event (the monitor, the ``box`` commands) and read by
``box events`` and the collector. No daemon: the file is the stream.

``<root>/events/events.jsonl`` holds one JSON object per line in docker's
``events.Message`` shape: ``status``/``id``/``from`` (docker's deprecated fields, set for
container and image events as moby sets them), ``Type``, ``Action``, ``Actor{ID,
Attributes}``, ``scope`` ("local"), ``time`` (seconds) and ``timeNano``.

Writers open the file with ``O_APPEND``, take an exclusive ``flock`` and write each line
with one ``write(2)``, so concurrent writers never interleave; the time is taken under
the lock, so lines are in time order. Bounded: a write that would take the file past
``max_bytes`` first renames it to ``events.jsonl.1`` (one old file is kept) and starts a
new one. A writer that waited on the lock of a file just rotated away sees the inode
changed and reopens. Readers read ``.1`` then the live file, and a follower notices the
rotation by the inode of the path.

Writing is stdlib ``json`` only: this runs on ``box run``'s path, where orjson's import
(~18 ms here) would cost more than the whole journal. Readers use orjson.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~4 ms of import, and this module is on `box run`'s path
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

EVENTS_DIR = "events"
JOURNAL = "events.jsonl"
MAX_BYTES = 8 * 1024 * 1024  # per file; with the one old file the journal stays < 16 MiB
TYPES = ("container", "image", "network", "volume", "daemon", "plugin", "node", "service",
         "secret", "config")


def journal_path(root: str) -> str:
    """The live journal of the state root ``root``."""
    return os.path.join(root, EVENTS_DIR, JOURNAL)


def message(kind: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
            time_ns: int | None = None) -> dict:
    """One event in docker's ``events.Message`` shape and key order (moby's
    ``events.Log``: the deprecated ``status``/``id``/``from`` only for containers and
    images, ``from`` being the container's image)."""
    ns = time.time_ns() if time_ns is None else time_ns
    attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
    msg: dict = {}
    if kind in ("container", "image"):
        msg["status"] = action
        msg["id"] = actor_id
        if kind == "container" and attrs.get("image"):
            msg["from"] = attrs["image"]
    msg.update(Type=kind, Action=action, Actor={"ID": actor_id, "Attributes": attrs},
               scope="local", time=ns // 1_000_000_000, timeNano=ns)
    return msg


def encode(msg: dict) -> bytes:
    """One journal line (JSON, no spaces, ``\\n``-terminated; non-ASCII escaped so a line
    never holds a raw newline or invalid UTF-8)."""
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def append(root: str, kind: str, action: str, actor_id: str,
           attributes: dict[str, str] | None = None, max_bytes: int = MAX_BYTES) -> dict:
    """Append one event to ``root``'s journal (see the module docstring); the message.
    OSError passes: callers that must never fail because of the journal use ``record``."""
    path = journal_path(root)
    for _ in range(10):
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current != st.st_ino:
                continue  # rotated while we waited for the lock: write to the new file
            msg = message(kind, action, actor_id, attributes)
            line = encode(msg)
            if st.st_size and st.st_size + len(line) > max_bytes:
                os.replace(path, path + ".1")
                continue  # the next round creates the new file
            os.write(fd, line)
            return msg
        finally:
            os.close(fd)
    raise OSError(f"events journal {path}: rotated away under every attempt")


def _open(path: str) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return os.open(path, flags, 0o600)


def record(root: str, kind: str, action: str, actor_id: str,
           attributes: dict[str, str] | None = None) -> None:
    """``append`` for the processes that cause events: a journal that cannot be written
    (read-only root, disk full) never fails the command that caused the event."""
    with contextlib.suppress(OSError, ValueError):
        append(root, kind, action, actor_id, attributes)


# --- reading -------------------------------------------------------------------------


def parse_line(line: bytes) -> dict | None:
    """One journal line -> the message, or None for anything that is not one (a torn
    tail after a crash, garbage): a reader skips it and goes on."""
    import orjson

    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict):
        return None
    actor = msg.get("Actor")
    if (not isinstance(msg.get("Type"), str) or not isinstance(msg.get("Action"), str)
            or not isinstance(msg.get("timeNano"), int) or not isinstance(actor, dict)
            or not isinstance(actor.get("ID"), str)):
        return None
    attrs = actor.get("Attributes")
    if attrs is None:
        actor["Attributes"] = {}
    elif not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
        return None
    return msg


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """Complete lines of a file object from where it stands; a last line without its
    newline is left (the reader's position stays before it)."""
    while True:
        pos = f.tell()
        line = f.readline()
        if not line:
            return
        if not line.endswith(b"\n"):
            f.seek(pos)
            return
        yield line


def replay(root: str, since_ns: int = 0, until_ns: int | None = None) -> Iterator[dict]:
    """The journaled events with ``since_ns <= timeNano <= until_ns``, oldest first."""
    for msg in _replay_files(root):
        t = msg["timeNano"]
        if t < since_ns:
            continue
        if until_ns is not None and t > until_ns:
            return
        yield msg


def _replay_files(root: str) -> Iterator[dict]:
    path = journal_path(root)
    for name in (path + ".1", path):
        try:
            f = open(name, "rb")
        except OSError:  # absent, or not a file: nothing journaled there
            continue
        with f:
            for line in _lines(f):
                msg = parse_line(line)
                if msg is not None:
                    yield msg


class Follower:
    """Reads a journal from its start (``.1`` first) and then what is appended, across
    rotations: ``poll()`` returns the messages new since the last call."""

    def __init__(self, root: str) -> None:
        self.path = journal_path(root)
        self._f: BinaryIO | None = None
        self._ino = -1
        self._old_done = False

    def poll(self) -> list[dict]:
        out: list[dict] = []
        if not self._old_done:
            self._old_done = True
            self._open_current()
            old = self.path + ".1"
            try:
                with open(old, "rb") as f:
                    if os.fstat(f.fileno()).st_ino != self._ino:
                        out.extend(self._read(f))
            except OSError:
                pass
        if self._f is None:
            self._open_current()
        if self._f is not None:
            out.extend(self._read(self._f))
            try:
                ino = os.stat(self.path).st_ino
            except OSError:
                ino = -1
            if ino != self._ino:  # rotated: finish the old file, then start the new one
                out.extend(self._read(self._f))
                self._f.close()
                self._f = None
                self._open_current()
                if self._f is not None:
                    out.extend(self._read(self._f))
        return out

    def _open_current(self) -> None:
        try:
            self._f = open(self.path, "rb")
            self._ino = os.fstat(self._f.fileno()).st_ino
        except OSError:  # absent, or not a file: nothing journaled there
            self._f, self._ino = None, -1

    @staticmethod
    def _read(f: BinaryIO) -> list[dict]:
        return [m for m in map(parse_line, _lines(f)) if m is not None]

    def skip_to_end(self) -> None:
        """Start after what is there now (follow only new events)."""
        self._old_done = True
        self._open_current()
        if self._f is not None:
            self._f.seek(0, os.SEEK_END)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def follow(root: str, since_ns: int | None, stop: Callable[[], bool],
           interval: float = 0.1) -> Iterator[dict]:
    """Events with ``timeNano >= since_ns`` already in the journal (none when
    ``since_ns`` is None: docker's stream starts now), then every new one as it is
    appended, until ``stop()`` is true (checked every ``interval`` seconds)."""
    follower = Follower(root)
    if since_ns is None:
        follower.skip_to_end()
        since_ns = 0
    try:
        while not stop():
            batch = follower.poll()
            for msg in batch:
                if msg["timeNano"] >= since_ns:
                    yield msg
            if not batch:
                time.sleep(interval)
    finally:
        follower.close()
