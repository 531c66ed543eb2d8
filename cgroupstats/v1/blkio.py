"""v1 blkio: read/write bytes and ops per device ("major:minor"), bytes per operation,
and where the scheduler writes them (cfq, bfq with its debug stats) merged requests,
service time and queued requests (cAdvisor's IoMerged, IoServiceTime, IoQueued).

The throttle layer's counters are read first (they count every bio on current kernels);
when they hold no device line, the scheduler's (bfq, then legacy cfq) recursive counters
are tried, as runc does in the other order.
"""

from __future__ import annotations

from cgroupstats.model import IoStats
from cgroupstats.parse import READ_SIZE, Held, pread

# (bytes file, ops file) pairs, best first; the recursive variant before the plain one.
SOURCES = (
    ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"),
    ("blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"),
    ("blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"),
    ("blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"),
)
# cAdvisor's optional DiskIo groups: (group, files tried in order). The throttle layer
# writes none of them, so a host with only throttle files reads no more than before.
EXTRA = (
    ("merged", ("blkio.io_merged_recursive", "blkio.bfq.io_merged_recursive")),
    ("time", ("blkio.io_service_time_recursive", "blkio.bfq.io_service_time_recursive")),
    ("queued", ("blkio.io_queued_recursive", "blkio.bfq.io_queued_recursive")),
)
PROBE_EVERY = 10
EMPTY: dict[str, IoStats] = {}  # shared: samples are never changed once made
NO_IO = b"Total 0\n"  # what a group that never did I/O shows


def parse_rw(data: bytes) -> dict[bytes, list[int]]:
    """ "254:0 Read 20971520\\n254:0 Write 0\\n...Total 0" -> {b"254:0": [read, write]}."""
    out: dict[bytes, list[int]] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if len(words) != 3:
            continue  # "Total N" and the empty tail
        op = words[1]
        if op == b"Read":
            slot = 0
        elif op == b"Write":
            slot = 1
        else:
            continue
        counts = out.get(words[0])
        if counts is None:
            counts = out[words[0]] = [0, 0]
        counts[slot] = int(words[2])
    return out


def parse_ops(data: bytes) -> dict[bytes, dict[str, int]]:
    """ "8:0 Read 5\n8:0 Sync 5\n...Total 5" -> {b"8:0": {"Read": 5, "Sync": 5, ...}}."""
    out: dict[bytes, dict[str, int]] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if len(words) != 3:
            continue
        ops = out.get(words[0])
        if ops is None:
            ops = out[words[0]] = {}
        ops[words[1].decode()] = int(words[2])
    return out


class Blkio:
    """Held files of one container's v1 blkio group."""

    def __init__(self, held: Held) -> None:
        self._pairs: list[tuple[int, int]] = []
        self._idle = 0  # reads left before the other sources are probed again
        # the last bytes and ops files with a device, and what was made of them
        self._last: tuple[bytes, bytes, dict[str, IoStats]] = (b"", b"", EMPTY)
        throttle_found = False
        for i, (bytes_file, ops_file) in enumerate(SOURCES):
            if i == 1 and throttle_found:
                continue  # the plain throttle files only when recursive ones are missing
            b = held.open(bytes_file, "nested")
            if b < 0:
                continue
            o = held.open(ops_file, "nested")
            self._pairs.append((b, o))
            throttle_found = throttle_found or i == 0
        self._extra: list[tuple[str, int]] = []
        for group, files in EXTRA:
            for name in files:
                fd = held.open(name, "nested")
                if fd >= 0:
                    self._extra.append((group, fd))
                    break

    def read(self) -> dict[str, IoStats]:
        # A group that never did I/O has empty files in every layer: while the first
        # source is empty, the others are probed only every PROBE_EVERY reads.
        pairs = self._pairs
        if self._idle > 0 and len(pairs) > 1:
            self._idle -= 1
            pairs = pairs[:1]
        for b, o in pairs:
            raw = pread(b, READ_SIZE, 0)
            if raw == NO_IO:
                continue
            by_bytes = parse_rw(raw) if raw != self._last[0] else None
            if by_bytes is not None and not by_bytes:
                continue
            # the ops file is read whenever the bytes file has a device: an empty flush
            # counts an op and no bytes
            raw_ops = pread(o, READ_SIZE, 0) if o >= 0 else b""
            if by_bytes is None:
                if raw_ops == self._last[1]:
                    return self._last[2]  # unchanged: what was made of it last time
                by_bytes = parse_rw(raw)
            by_ops = parse_rw(raw_ops)
            per_op = parse_ops(raw)
            extra = {group: parse_ops(pread(fd, READ_SIZE, 0)) for group, fd in self._extra}
            out: dict[str, IoStats] = {}
            for dev, (rb, wb) in by_bytes.items():
                ro, wo = by_ops.get(dev, (0, 0))
                io = out[dev.decode()] = IoStats(rb, wb, ro, wo, by_op=per_op.get(dev, {}))
                if extra:
                    _add_extra(io, dev, extra)
            if not self._extra:  # with extra files the sample must be made every time
                self._last = (raw, raw_ops, out)
            return out
        if pairs is self._pairs:
            self._idle = PROBE_EVERY
        return EMPTY


def _add_extra(io: IoStats, dev: bytes, extra: dict[str, dict[bytes, dict[str, int]]]) -> None:
    """Fill the scheduler's groups of one device (cAdvisor's ops: Read/Write/Total)."""
    has = []
    merged = extra.get("merged", {}).get(dev)
    if merged is not None:
        io.read_merged, io.write_merged = merged.get("Read", 0), merged.get("Write", 0)
        has.append("merged")
    times = extra.get("time", {}).get(dev)
    if times is not None:
        io.read_time_ns, io.write_time_ns = times.get("Read", 0), times.get("Write", 0)
        io.time_ns = times.get("Total", 0)
        has.append("time")
    queued = extra.get("queued", {}).get(dev)
    if queued is not None:
        io.queued = queued.get("Total", 0)
        has.append("queued")
    io.has = frozenset(has)
