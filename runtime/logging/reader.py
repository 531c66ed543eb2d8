"""Reading a json-file log the way ``docker logs`` does (moby ``loggerutils.LogFile``).

Files are read oldest first: ``<log>.N(.gz)`` ... ``<log>.1(.gz)``, then the live file up
to its size when reading began; following continues from there on the same open file and
moves to the new live file after a rotation. ``--tail`` counts lines backwards from the
end (the live file first) without decoding the rest; ``--since`` drops entries until the
first one at or after it, then stops filtering (timestamps need not be monotonic);
``--until`` ends reading at the first entry after it. Lines are parsed by the shipper's
one json-file parser.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from urllib.parse import quote_plus

from formats.jsonfile.parser import LogEntry, ParseError, parse_line, parse_time

BLOCK = 64 * 1024
READ = 1 << 20
POLL_INTERVAL = 0.05

OnError = Callable[[ParseError], None]


def _ignore(err: ParseError) -> None:
    """Default for ``on_error``: like dockerd, a bad line does not end ``logs``."""


# --- the files ----------------------------------------------------------------------------

def rotated_files(log_path: str) -> list[str]:
    """Rotated files of ``log_path``, oldest first; ``.N`` wins over ``.N.gz`` (while a
    rotated file is being compressed both exist and only the plain one is complete)."""
    directory, base = os.path.split(log_path)
    pattern = re.compile(re.escape(base) + r"\.([1-9][0-9]*)(\.gz)?")
    found: dict[int, str] = {}
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    for name in names:
        m = pattern.fullmatch(name)
        if m and (int(m.group(1)) not in found or not m.group(2)):
            found[int(m.group(1))] = os.path.join(directory, name)
    return [found[n] for n in sorted(found, reverse=True)]


def gzip_last_time_ns(fd: int) -> int | None:
    """``lastTime`` from the gzip header extra moby writes on rotated logs; None if absent
    or Go's zero time."""
    head = os.pread(fd, 10 + 2 + 512, 0)
    if head[:3] != b"\x1f\x8b\x08" or not head[3] & 0x04:
        return None
    xlen = int.from_bytes(head[10:12], "little")
    try:
        value = json.loads(head[12:12 + xlen])["lastTime"]
        ns = parse_time(value)
    except (ValueError, KeyError, TypeError):
        return None
    return None if value.startswith("0001-01-01T00:00:00") else ns


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _decompressed(stack: ExitStack, fd: int) -> int:
    """A temp file holding the decompressed log (moby decompresses to a temp file too)."""
    tmp = stack.enter_context(tempfile.TemporaryFile(prefix="box-log-"))
    with os.fdopen(os.dup(fd), "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        shutil.copyfileobj(gz, tmp, READ)
    tmp.flush()
    return tmp.fileno()


def _complete_end(fd: int, size: int) -> int:
    """Offset just after the last newline in ``fd[0:size]`` (a write may be in progress)."""
    cur = size
    while cur > 0:
        lo = max(0, cur - BLOCK)
        j = os.pread(fd, cur - lo, lo).rfind(b"\n")
        if j >= 0:
            return lo + j + 1
        cur = lo
    return 0


def _tail_start(fd: int, end: int, n: int) -> tuple[int, int]:
    """Where the last ``n`` lines of ``fd[0:end]`` start and how many there are (<= n)."""
    if end == 0 or n <= 0:
        return end, 0
    found, cur = 0, end - 1  # the final newline ends the last line: skip it
    while cur > 0:
        lo = max(0, cur - BLOCK)
        blk = os.pread(fd, cur - lo, lo)
        i = len(blk)
        while (j := blk.rfind(b"\n", 0, i)) >= 0:
            found += 1
            if found == n:
                return lo + j + 1, n
            i = j
        cur = lo
    return 0, found + 1


def _lines(fd: int, start: int, end: int) -> Iterator[bytes]:
    """The newline-terminated lines of ``fd[start:end]`` (``end`` is after a newline)."""
    pos, rest = start, b""
    while pos < end:
        chunk = os.pread(fd, min(READ, end - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts


class _Window:
    """``--since``/``--until`` as moby's forwarder applies them."""

    def __init__(self, since_ns: int | None, until_ns: int | None) -> None:
        self.since = since_ns
        self.until = until_ns
        self.done = False  # an entry after ``until`` was seen: reading is over

    def entries(self, raws: Iterable[bytes], on_error: OnError) -> Iterator[LogEntry]:
        """The entries of ``raws`` inside the window; stops (and sets ``done``) at the
        first one past ``until``."""
        for raw in raws:
            entry = _parse(raw, on_error)
            if entry is None:
                continue
            verdict = self.admit(entry)
            if verdict is None:
                self.done = True
                return
            if verdict:
                yield entry

    def admit(self, entry: LogEntry) -> bool | None:
        """True: show it; False: skip it; None: past ``until``, stop reading."""
        if self.since is not None:
            if entry.time_ns < self.since:
                return False
            self.since = None  # the first entry at/after since switches the filter off
        if self.until is not None and entry.time_ns > self.until:
            return None
        return True


# --- reading ------------------------------------------------------------------------------

def read_logs(log_path: str, since_ns: int | None = None, until_ns: int | None = None,
              tail: int | None = None, follow: bool = False,
              stop: Callable[[], bool] | None = None, on_error: OnError = _ignore,
              poll_interval: float = POLL_INTERVAL) -> Iterator[LogEntry]:
    """Everything ``docker logs [--since] [--until] [--tail] [-f]`` shows, as entries.

    ``tail`` None means all lines, 0 none. With ``follow``, reading goes on until ``stop()``
    is True and the live file is drained (``stop`` None: until ``until_ns`` is passed)."""
    window = _Window(since_ns, until_ns)
    with ExitStack() as stack:
        live_fd, live_size, rotated = _snapshot(stack, log_path, want_rotated=tail != 0)
        if tail != 0:
            sources = [(fd, None) for fd in rotated] + [(live_fd, live_size)]
            for fd, start, end in _select(stack, sources, tail, since_ns):
                yield from window.entries(_lines(fd, start, end), on_error)
                if window.done:
                    return
        if follow:
            if live_fd is not None:
                live_fd = os.dup(live_fd)  # _follow owns (and closes) its fds
            yield from _follow(log_path, live_fd, live_size, window,
                               stop or (lambda: False), on_error, poll_interval)


def _snapshot(stack: ExitStack, log_path: str,
              want_rotated: bool) -> tuple[int | None, int, list[int]]:
    """Open the live file (its size fixes where history ends) and the rotated files,
    retrying if a rotation ran in between."""
    for _ in range(10):
        live_fd = _open(log_path)
        if live_fd is not None:
            stack.callback(os.close, live_fd)
        size = os.fstat(live_fd).st_size if live_fd is not None else 0
        if not want_rotated:
            return live_fd, size, []
        fds = []
        for path in reversed(rotated_files(log_path)):  # newest first: least likely to move
            fd = _open(path)
            if fd is not None:
                stack.callback(os.close, fd)
                fds.append(fd)
        if live_fd is None or not _replaced(log_path, live_fd):
            return live_fd, size, fds[::-1]
    return live_fd, size, fds[::-1]


def _select(stack: ExitStack, sources: list[tuple[int | None, int | None]], tail: int | None,
            since_ns: int | None) -> list[tuple[int, int, int]]:
    """(fd, start, end) ranges to read, oldest first; gz files are decompressed, and
    skipped whole when their header says every entry is before ``since``."""
    opened: list[tuple[int, int]] = []
    for fd, size in sources:
        if fd is None:
            continue
        if size is None:  # rotated file: plain or gzip
            if os.pread(fd, 2, 0) == b"\x1f\x8b":
                last = gzip_last_time_ns(fd)
                if since_ns is not None and last is not None and last < since_ns:
                    continue
                fd = _decompressed(stack, fd)
            size = os.fstat(fd).st_size
        opened.append((fd, size))
    if tail is None:
        return [(fd, 0, _complete_end(fd, size)) for fd, size in opened]
    picked: list[tuple[int, int, int]] = []
    need = tail
    for fd, size in reversed(opened):  # newest first
        if need <= 0:
            break
        end = _complete_end(fd, size)
        start, got = _tail_start(fd, end, need)
        need -= got
        picked.append((fd, start, end))
    return picked[::-1]


def _parse(raw: bytes, on_error: OnError) -> LogEntry | None:
    try:
        return parse_line(raw)
    except ParseError as err:
        on_error(err)
        return None


def _replaced(path: str, fd: int) -> bool:
    """True when ``path`` no longer names the file open as ``fd`` (rotated or removed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    own = os.fstat(fd)
    return (st.st_ino, st.st_dev) != (own.st_ino, own.st_dev)


def _follow(path: str, fd: int | None, pos: int, window: _Window, stop: Callable[[], bool],
            on_error: OnError, poll_interval: float) -> Iterator[LogEntry]:
    pending = b""
    try:
        while True:
            stopping = stop()
            if fd is None:
                fd, pos, pending = _open(path), 0, b""
                if fd is None:
                    if stopping:
                        return
                    time.sleep(poll_interval)
                    continue
            rotated = _replaced(path, fd)  # checked before the drain: nothing comes after
            if os.fstat(fd).st_size < pos:  # truncated in place: start over
                pos, pending = 0, b""
            busy = False
            while chunk := os.pread(fd, READ, pos):
                busy = True
                pos += len(chunk)
                parts = (pending + chunk).split(b"\n")
                pending = parts.pop()
                yield from window.entries(parts, on_error)
                if window.done:
                    return
            if rotated:
                if pending:
                    on_error(ParseError(pending, "unterminated line in a rotated log file"))
                os.close(fd)
                fd = None
                continue
            if stopping:
                return
            if not busy:  # a busy log is polled again at once: rotations come fast then
                time.sleep(poll_interval)
    finally:
        if fd is not None:
            os.close(fd)


def iter_entries(log_path: str, since_ns: int | None = None, until_ns: int | None = None,
                 tail: int | None = None) -> Iterator[LogEntry]:
    """``docker logs`` without ``-f``: rotated files oldest first, then the live file."""
    return read_logs(log_path, since_ns=since_ns, until_ns=until_ns, tail=tail)


def follow(log_path: str, since_ns: int | None, start_at_end: bool,
           stop: Callable[[], bool]) -> Iterator[LogEntry]:
    """Keep reading the live file across rotations until ``stop()`` and drained;
    ``start_at_end`` False shows the whole history first. Like any reader outside the
    writing process (dockerd's own is woken per write), it misses a file rotated out
    entirely between two polls (~50 ms); such lines stay in the history. For ``-f --tail N`` use
    :func:`read_logs` (one snapshot: no line lost or doubled between the two)."""
    return read_logs(log_path, since_ns=since_ns, tail=0 if start_at_end else None,
                     follow=True, stop=stop)


# --- printing -----------------------------------------------------------------------------

def _fixed_time(ns: int) -> bytes:
    """Go's RFC3339NanoFixed (always 9 digits), what ``docker logs -t`` prints."""
    secs, frac = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z").encode()


def format_entry(entry: LogEntry, timestamps: bool, details: bool = False) -> bytes:
    """The bytes ``docker logs [-t] [--details]`` writes for one entry. Partials print
    as they are (no newline added), each with its own timestamp under ``-t``, as dockerd
    does."""
    out = entry.log
    if details:
        attrs = entry.attrs or {}
        pairs = ",".join(f"{quote_plus(k, safe='')}={quote_plus(attrs[k], safe='')}"
                         for k in sorted(attrs))
        out = pairs.encode() + b" " + out
    if timestamps:
        out = _fixed_time(entry.time_ns) + b" " + out
    return out
