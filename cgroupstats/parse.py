"""Shared pieces of the cgroup readers: held files, the two errors, and parse helpers.

Files are opened once per container and re-read with ``os.pread(fd, n, 0)``: cgroup and
proc files regenerate at offset 0, and that costs about a third of open/read/close.
Parsing stays on ``bytes.split`` and ``int()``; no regex on the hot path. Parse failures
are rare, so finding which file was bad is done only after one happened (``Held.diagnose``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence

from cgroupstats.model import Psi, PsiLine

READ_SIZE = 65536
# A file holding one integer (a u64 is at most 20 digits, plus sign and newline): asking
# for 32 bytes instead of 64 KiB spares Python a 64 KiB buffer per read (~0.13 us).
INT_SIZE = 32
GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ESRCH})
# v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE (9223372036854771712 on 4 KiB
# pages); anything this large is not a real limit.
V1_UNLIMITED = 1 << 62

pread = os.pread


class ContainerGone(Exception):
    """The container's cgroup vanished (removed mid-life or before open): skip, don't log."""

    def __init__(self, what: str) -> None:
        super().__init__(f"cgroup gone: {what}")
        self.what = what


class ParseError(ValueError):
    """A cgroup file did not have the shape its kernel documentation gives."""

    def __init__(self, directory: str, file: str, content: bytes, reason: str) -> None:
        super().__init__(f"{directory}/{file}: {reason} (content {content[:120]!r})")
        self.directory = directory
        self.file = file
        self.content = content


def parse_int(data: bytes) -> int:
    return int(data)


def parse_limit(data: bytes) -> int:
    """A limit file ("max", "-1" or a number); unlimited becomes 0 (cAdvisor's convention)."""
    if data[:3] == b"max":
        return 0
    value = int(data)
    return 0 if value < 0 or value >= V1_UNLIMITED else value


def parse_flat(data: bytes) -> dict[bytes, bytes]:
    """A flat keyed file ("key value" lines), values left as bytes for int() on demand."""
    words = data.split()
    if len(words) & 1:
        raise ValueError("odd number of words in a flat keyed file")
    return dict(zip(words[::2], words[1::2], strict=True))


def flat_values(data: bytes, keys: Sequence[bytes]) -> list[int]:
    """The values of ``keys`` in a flat keyed file, in that order; 0 for a key the kernel
    does not write (swap without swap accounting, counters of newer kernels)."""
    get = parse_flat(data).get
    return [int(get(k, 0)) for k in keys]


def working_set(usage: int, inactive_file: int) -> int:
    """cAdvisor's working set: usage less the inactive page cache, never below 0."""
    return usage - inactive_file if usage > inactive_file else 0


def parse_text(data: bytes) -> str:
    return data.strip().decode()


def parse_psi_line(words: list[bytes]) -> PsiLine:
    # words: [b"some", b"avg10=0.00", b"avg60=0.00", b"avg300=0.00", b"total=0"]
    return PsiLine(float(words[1][6:]), float(words[2][6:]), float(words[3][7:]), int(words[4][6:]))


def parse_psi(data: bytes) -> Psi:
    """A pressure file: "some ..." and, for memory/io (and cpu since 5.13), "full ..."."""
    lines = data.split(b"\n")
    some = lines[0].split()
    if len(some) != 5 or some[0] != b"some":
        raise ValueError("no 'some' line")
    if len(lines) > 1 and lines[1]:
        return Psi(parse_psi_line(some), parse_psi_line(lines[1].split()))
    return Psi(parse_psi_line(some))


def _check_nested(data: bytes) -> None:
    for line in data.split(b"\n"):
        words = line.split()
        if not words or words[0] == b"Total":
            continue
        for word in words[1:]:
            if b"=" in word:
                int(word.partition(b"=")[2])
            elif not word.isdigit() and not word.isalpha():
                raise ValueError(f"bad word {word!r}")


def _check_flat(data: bytes) -> None:
    for value in parse_flat(data).values():
        int(value)


def _check_int_lines(data: bytes) -> None:
    for word in data.split():
        int(word)


# How each kind of file is re-checked by ``Held.diagnose`` after a parse failure.
CHECKS: dict[str, Callable[[bytes], object]] = {
    "int": parse_int,
    "limit": parse_limit,
    "flat": _check_flat,
    "ints": _check_int_lines,
    "text": parse_text,
    "psi": parse_psi,
    "nested": _check_nested,
}


def read_cold(path: str) -> bytes:
    """open/read/close of a file that is not held (see ``Held.cold``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, READ_SIZE)
    finally:
        os.close(fd)


# The kind of each file name (how ``Held.diagnose`` re-checks it): one table for every
# group, since a name always has the same format (kept per group it cost ~1 MB at 1000).
KIND_OF: dict[str, str] = {}


class Held:
    """The open files of one cgroup directory; ``close`` releases every one of them."""

    __slots__ = ("directory", "fds", "cold_files")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fds: dict[str, int] = {}
        self.cold_files: list[str] = []  # read rarely: opened per read, not held

    def open(self, name: str, kind: str, required: bool = False) -> int:
        """Open ``name``; -1 when an optional file is absent (older kernel, no swap...).

        A missing directory, or a missing required file, means the group is gone.
        """
        try:
            fd = os.open(f"{self.directory}/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            if required or not os.path.isdir(self.directory):
                raise ContainerGone(f"{self.directory}/{name}") from None
            return -1
        self.fds[name] = fd
        KIND_OF[name] = kind
        return fd

    def cold(self, name: str, kind: str) -> str:
        """A file read only every ``spec_every`` samples (limits), not held open, so a
        container holds ~13 descriptors instead of ~23 (1000 containers must fit a 20000
        open-files limit): ``name``, or "" when absent. Read with ``read_cold``."""
        path = f"{self.directory}/{name}"
        if not os.path.exists(path):
            if not os.path.isdir(self.directory):
                raise ContainerGone(path)
            return ""
        KIND_OF[name] = kind
        self.cold_files.append(name)
        return name

    def read_cold(self, name: str) -> bytes:
        """open/read/close of the cold file ``name`` (see ``cold``)."""
        return read_cold(f"{self.directory}/{name}")

    def probe(self, name: str) -> int:
        """Open ``name`` if it can be read now (pressure files fail with EOPNOTSUPP
        when PSI is off); -1 otherwise."""
        fd = self.open(name, "psi")
        if fd >= 0:
            try:
                pread(fd, READ_SIZE, 0)
            except OSError as exc:
                if exc.errno in GONE_ERRNOS:
                    raise ContainerGone(f"{self.directory}/{name}") from None
                del self.fds[name]
                os.close(fd)
                return -1
        return fd

    def close(self) -> None:
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)

    def diagnose(self) -> ContainerGone | ParseError | None:
        """After a failed parse, find the file that does not parse and name it.

        ContainerGone if the group vanished meanwhile, None if every file parses now.
        """
        files: list[tuple[str, int]] = list(self.fds.items())
        files += [(name, -1) for name in self.cold_files]
        for name, fd in files:
            try:
                data = pread(fd, READ_SIZE, 0) if fd >= 0 else read_cold(f"{self.directory}/{name}")
            except OSError as exc:
                if exc.errno in GONE_ERRNOS:
                    return ContainerGone(self.directory)
                raise
            try:
                CHECKS[KIND_OF[name]](data)
            except (ValueError, IndexError) as exc:
                return ParseError(self.directory, name, data, str(exc) or type(exc).__name__)
        return None
