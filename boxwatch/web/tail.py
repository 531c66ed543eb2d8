"""Following a container's json-file log from an exact position, across rotation.

A position is ``(inode, offset)``: the file it points into and the byte after the last
entry handed out. It survives the rename of ``<id>-json.log`` to ``.1`` (the inode stays),
so a reconnecting page resumes in the rotated file and runs on into the new one. Local
containers are found in the state roots (``config.v2.json``: ``Name``, ``LogPath``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from formats import statefile
from formats.jsonfile.parser import parse_line
from formats.logentry import ParseError

READ_MAX = 1 << 20  # bytes read per poll and file: a burst is spread over polls


@dataclass(frozen=True)
class LocalContainer:
    id: str
    name: str
    log_path: str
    root: str


def find_local(roots: Iterable[str], key: str) -> LocalContainer | None:
    """The container named ``key`` (or with that id or id prefix) in the state roots."""
    for root in roots:
        base = Path(root) / statefile.CONTAINERS
        if not base.is_dir():
            continue
        for d in base.iterdir():
            try:
                doc = orjson.loads((d / statefile.CONFIG).read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(doc, dict):
                continue
            cid, name = statefile.container_id(doc), statefile.container_name(doc)
            if key in (cid, name) or (len(key) >= 12 and cid.startswith(key)):
                path = doc.get("LogPath") or statefile.log_file(str(d), cid)
                return LocalContainer(cid, name, str(path), str(root))
    return None


@dataclass(frozen=True)
class Line:
    time_ns: int
    stream: str
    message: str
    position: tuple[int, int]  # (inode, offset) just after this entry


class Tail:
    """One log file followed from a position; ``read()`` returns the complete new lines."""

    def __init__(self, path: str, position: tuple[int, int] | None = None,
                 back_bytes: int = 0) -> None:
        """From ``position`` when its file is still the log or its ``.1``; else from
        ``back_bytes`` before the end of the log (0: its end), at a line start."""
        self.path = path
        self.fd = -1
        self.inode = 0
        self.offset = 0
        if position is not None and self._open_at(position):
            return
        self._open_current()
        if self.fd >= 0:
            size = os.fstat(self.fd).st_size
            self.offset = max(0, size - back_bytes) if back_bytes else size
            if self.offset > 0:  # the line cut by the window is skipped
                head = os.pread(self.fd, 1 << 16, self.offset - 1)
                nl = head.find(b"\n")
                self.offset += nl if nl >= 0 else len(head) - 1

    def _open_at(self, position: tuple[int, int]) -> bool:
        inode, offset = position
        for candidate in (self.path, self.path + ".1"):
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            if os.fstat(fd).st_ino == inode:
                self.fd, self.inode, self.offset = fd, inode, offset
                return True
            os.close(fd)
        return False

    def _open_current(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = -1
            return
        self.inode, self.offset = os.fstat(self.fd).st_ino, 0

    @property
    def position(self) -> tuple[int, int]:
        return (self.inode, self.offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self) -> list[Line]:
        """New complete lines; switches to the new file once the old one is read out."""
        out: list[Line] = []
        if self.fd < 0:
            self._open_current()
            if self.fd < 0:
                return out
        while True:
            self._read_into(out)
            try:
                current = os.stat(self.path).st_ino
            except OSError:
                return out
            if current == self.inode:
                return out
            self._read_into(out)  # what was written before the rename
            os.close(self.fd)
            self._open_current()
            if self.fd < 0:
                return out

    def _read_into(self, out: list[Line]) -> None:
        data = os.pread(self.fd, READ_MAX, self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return
        pos = self.offset
        for raw in data[: end + 1].splitlines(keepends=True):
            pos += len(raw)
            try:
                e = parse_line(raw)
            except ParseError:
                continue
            message = e.log.decode("utf-8", "replace").removesuffix("\n")
            out.append(Line(e.time_ns, e.stream, message, (self.inode, pos)))
        self.offset = pos
