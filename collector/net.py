"""Per-interface network counters of a container, from ``<proc>/<pid>/net/dev``.

The file shows the network namespace of ``pid``; it is opened once and re-read with
pread. The open file keeps that namespace alive, so ``close`` must be called when the
container goes (the cgroup reader does it on ContainerGone). A vanished process is not an
error: the container then simply has no network counters.
"""

from __future__ import annotations

import os

from collector.cgroups.parse import GONE_ERRNOS, READ_SIZE, ParseError, pread
from collector.model import NetStats

EMPTY: dict[str, NetStats] = {}


def parse_net_dev(data: bytes) -> dict[str, NetStats]:
    """Two header lines, then "  eth0: rx bytes packets errs drop fifo frame compressed
    multicast tx bytes packets errs drop fifo colls carrier compressed"; ``lo`` skipped."""
    out: dict[str, NetStats] = {}
    for line in data.split(b"\n")[2:]:
        name, sep, rest = line.partition(b":")  # wide counters touch the colon
        if not sep:
            continue
        name = name.strip()
        if name == b"lo":
            continue
        f = rest.split()
        try:
            out[name.decode()] = NetStats(
                int(f[0]),
                int(f[1]),
                int(f[2]),
                int(f[3]),
                int(f[8]),
                int(f[9]),
                int(f[10]),
                int(f[11]),
            )
        except (ValueError, IndexError):
            raise ValueError(f"bad line {line.strip()!r}") from None
    return out


class NetReader:
    """The held net/dev file of one container's init process."""

    __slots__ = ("path", "pid", "_fd", "_last", "_parsed")

    def __init__(self, proc_root: str, pid: int) -> None:
        self.pid = pid
        self.path = f"{proc_root}/{pid}/net/dev"
        self._fd = -1
        self._last = b""  # the previous content and its parse: idle interfaces (and
        self._parsed = EMPTY  # idle namespaces) are common, and equal bytes parse equal
        if pid > 0:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in GONE_ERRNOS:
                    raise

    def read(self) -> dict[str, NetStats]:
        if self._fd < 0:
            return EMPTY
        try:
            data = pread(self._fd, READ_SIZE, 0)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                raise
            self.close()
            return EMPTY
        if data == self._last:
            return self._parsed
        try:
            self._parsed = parse_net_dev(data)
            self._last = data
            return self._parsed
        except (ValueError, IndexError) as exc:
            raise ParseError(self.path.rpartition("/net/")[0], "net/dev", data, str(exc)) from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
