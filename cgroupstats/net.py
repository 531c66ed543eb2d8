"""Per-interface network counters of a container, from ``<proc>/<pid>/net/dev``.

The file shows the network namespace of ``pid``; it is opened once and re-read with
pread. The open file keeps that namespace alive, so ``close`` must be called when the
container goes (the cgroup reader does it on ContainerGone). A vanished process is not an
error: the container then simply has no network counters.

Containers often share a namespace (``--network host``, the containers of a Kubernetes
pod, ``--network container:<id>``); they all report its interfaces, as cAdvisor does.
With a ``NetNamespaces`` they share one held file too, read once per interval
(``advance``) instead of once per container: ~5 us of kernel time per reading saved for
each extra container in the namespace. Identity is the ``ns/net`` link's (dev, inode).
"""

from __future__ import annotations

import os

from cgroupstats.model import NetStats
from cgroupstats.parse import GONE_ERRNOS, READ_SIZE, ParseError, pread

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


class NetDev:
    """The held net/dev of one namespace and its last reading."""

    __slots__ = ("path", "fd", "users", "last", "parsed", "generation")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.users = 1
        self.last = b""  # the previous content and its parse: idle interfaces (and
        self.parsed = EMPTY  # idle namespaces) are common, and equal bytes parse equal
        self.generation = -1  # NetNamespaces.generation of ``parsed``

    def read(self) -> dict[str, NetStats]:
        """OSError (ESRCH...) when the namespace's process is gone."""
        data = pread(self.fd, READ_SIZE, 0)
        if data != self.last:
            try:
                self.parsed = parse_net_dev(data)
            except (ValueError, IndexError) as exc:
                raise ParseError(
                    self.path.rpartition("/net/")[0], "net/dev", data, str(exc)
                ) from exc
            self.last = data
        return self.parsed

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno not in GONE_ERRNOS:
            raise
        return -1


class NetNamespaces:
    """The held net/dev files by network namespace, shared by the containers in each;
    a file is read at most once per ``advance()`` (the pipeline calls it each interval)."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self.generation = 0
        self._open: dict[tuple[int, int], NetDev] = {}

    def advance(self) -> None:
        """A new interval: the next ``read`` of each namespace goes to the kernel."""
        self.generation += 1

    def acquire(self, pid: int) -> tuple[NetDev | None, tuple[int, int] | None]:
        """The shared file of ``pid``'s namespace (opened if new) and its key; a private
        file and key None when the namespace cannot be identified (no ``ns/net``, e.g. a
        fixture tree); (None, None) when the process is gone."""
        path = f"{self.proc_root}/{pid}/net/dev"
        try:
            st = os.stat(f"{self.proc_root}/{pid}/ns/net")
        except OSError:
            fd = _open(path)
            return (NetDev(path, fd) if fd >= 0 else None), None
        key = (st.st_dev, st.st_ino)
        dev = self._open.get(key)
        if dev is not None and dev.fd >= 0:
            dev.users += 1
            return dev, key
        fd = _open(path)
        if fd < 0:
            return None, None
        dev = self._open[key] = NetDev(path, fd)
        return dev, key

    def release(self, key: tuple[int, int], dev: NetDev) -> None:
        dev.users -= 1
        if dev.users <= 0:
            dev.close()
            if self._open.get(key) is dev:
                del self._open[key]

    @property
    def open_files(self) -> int:
        return sum(dev.fd >= 0 for dev in self._open.values())

    def close(self) -> None:
        opened, self._open = self._open, {}
        for dev in opened.values():
            dev.close()


class NetReader:
    """The network counters of one container's init process: a private held file, or
    the file of its namespace shared through ``namespaces``."""

    __slots__ = ("path", "pid", "_dev", "_key", "_ns")

    def __init__(self, proc_root: str, pid: int, namespaces: NetNamespaces | None = None) -> None:
        self.pid = pid
        self.path = f"{proc_root}/{pid}/net/dev"
        self._ns = namespaces
        self._dev: NetDev | None = None
        self._key: tuple[int, int] | None = None
        if pid <= 0:
            return
        if namespaces is None:
            fd = _open(self.path)
            self._dev = NetDev(self.path, fd) if fd >= 0 else None
        else:
            self._dev, self._key = namespaces.acquire(pid)

    @property
    def private_fd(self) -> int:
        """The descriptor this reader alone holds, or -1 (none, or shared)."""
        dev = self._dev
        return dev.fd if dev is not None and self._key is None else -1

    @property
    def file(self) -> str:
        """The path of the file read (another container's pid when shared), or ""."""
        return self._dev.path if self._dev is not None else ""

    def read(self) -> dict[str, NetStats]:
        dev = self._dev
        if dev is None:
            return EMPTY
        ns = self._ns
        if ns is not None and dev.generation == ns.generation:
            return dev.parsed
        try:
            parsed = dev.read()
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                raise
            self.close()
            return EMPTY
        if ns is not None:
            dev.generation = ns.generation
        return parsed

    def close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        if self._key is not None and self._ns is not None:
            self._ns.release(self._key, dev)
        else:
            dev.close()
