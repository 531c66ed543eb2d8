"""The short history of every container, served with its detail by the HTTP API.

Why the layout: 5 minutes of 1 s samples is 300 rows of 10 counters per container; as
int64 that is 24 KB a container, 24 MB at 1000 containers out of a 60 MB RSS budget.
Between two samples a second apart every counter moves by far less than 2^31, so each
container keeps only its newest row as absolute values and a ring of per-field deltas
(``row[k] - row[k-1]``) as ``array("i")``: 4 bytes a value, about half the memory.
``rows()`` rebuilds the rows by walking back from the newest one.

Widening: a delta that does not fit int32 (a counter reset after a restart, a many-core
container burning more than 2^31 cpu ns in one interval, a huge memory jump) converts
that container's ring to ``array("q")`` in place, same layout, and recording goes on;
a delta beyond int64 (only with values near or past 2^63, which int64 rows could not hold
at all) turns it into a plain list of ints. Widening is per container and permanent for
the life of its ring (until the container leaves ``alive``). No value is ever lost or
rounded, except:

An idle container's readers hand out the same objects again (samples are never changed
once made); a row made of the same objects as the last one only moves the timestamp.

Timestamps are kept at microsecond precision (``timestamp_ns // 1000``, so one interval's
delta fits int32 up to ~35 minutes); ``rows()`` reports ``timestamp_ns`` as those
microseconds * 1000. Every other field is exact.
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections.abc import Iterable
from itertools import accumulate
from operator import sub

from cgroupstats.model import Sample

HISTORY_FIELDS = (
    "timestamp_ns", "cpu_usage_ns", "cpu_throttled_ns", "memory_usage", "memory_working_set",
    "rx_bytes", "tx_bytes", "blkio_read_bytes", "blkio_write_bytes", "pids",
)
_NF = len(HISTORY_FIELDS)
_ROW_BYTES = 8 * _NF  # what the newest absolute row counts for in nbytes(): 10 x int64


class _Ring:
    """One container: its newest row (timestamp in us) and the deltas that lead to it.

    ``deltas`` has ``size - 1`` slots of ``_NF`` values (the oldest row needs no delta);
    slot ``next - 1`` holds ``last - row_before_last``; ``count`` rows are held in all.
    """

    __slots__ = ("deltas", "code", "last", "next", "count", "parts")

    def __init__(self, slots: int, last: tuple[int, ...]) -> None:
        self.deltas: array[int] | list[int] = array("i", bytes(4 * _NF * slots))
        self.code = "i"  # the typecode of deltas, "" once it is a list
        self.last = last
        self.next = 0
        self.count = 1
        self.parts: tuple[object, ...] = ()  # the sample objects ``last`` was made from

    def put(self, i: int, delta: tuple[int, ...]) -> None:
        """Store one row's deltas at ``i``, widening int32 -> int64 -> Python ints until
        they fit (same layout, never narrowed again)."""
        while self.code:
            try:
                self.deltas[i : i + _NF] = array(self.code, delta)
                return
            except OverflowError:
                d = self.deltas
                self.deltas, self.code = (array("q", d), "q") if self.code == "i" else (list(d), "")
        self.deltas[i : i + _NF] = delta

    def nbytes(self) -> int:
        d = self.deltas
        if isinstance(d, array):
            return _ROW_BYTES + d.itemsize * len(d)
        return _ROW_BYTES + sys.getsizeof(d) + sum(sys.getsizeof(v) for v in d)


class History:
    """The last ``size`` samples of each container (``size`` 0: disabled), as a delta ring
    per container (see the module docstring). Safe to read from another thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rings: dict[str, _Ring] = {}
        self._lock = threading.Lock()

    def record(self, samples: Iterable[Sample], alive: dict[str, Sample]) -> None:
        """Append one row per sample, then drop the rings of ids not in ``alive``."""
        if not self.size:
            return
        size, rings = self.size, self._rings
        slots = size - 1
        with self._lock:
            for s in samples:
                ring = rings.get(s.ref.id)
                parts = (s.cpu, s.memory, s.pids, s.network, s.blkio)
                if ring is not None and ring.parts == parts:  # items compared by identity
                    us = s.timestamp_ns // 1000  # first: an idle container, only time moved
                    new = (us, *ring.last[1:])
                    delta = (us - ring.last[0], 0, 0, 0, 0, 0, 0, 0, 0, 0)
                else:
                    rx = tx = rd = wr = 0
                    for n in s.network.values():
                        rx += n.rx_bytes
                        tx += n.tx_bytes
                    for d in s.blkio.values():
                        rd += d.read_bytes
                        wr += d.write_bytes
                    cpu, mem = s.cpu, s.memory
                    us, cu, ct, mu, mw, pc = (s.timestamp_ns // 1000, cpu.usage_ns,
                                              cpu.throttled_ns, mem.usage, mem.working_set,
                                              s.pids.current)
                    new = (us, cu, ct, mu, mw, rx, tx, rd, wr, pc)
                    if ring is None:
                        ring = rings[s.ref.id] = _Ring(slots, new)
                        ring.parts = parts
                        continue
                    ring.parts = parts
                    p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 = ring.last
                    delta = (us - p0, cu - p1, ct - p2, mu - p3, mw - p4,
                             rx - p5, tx - p6, rd - p7, wr - p8, pc - p9)
                if slots:
                    i, code = ring.next * _NF, ring.code
                    if code:
                        try:
                            ring.deltas[i : i + _NF] = array(code, delta)
                        except OverflowError:  # too wide for this ring: widen it for good
                            ring.put(i, delta)
                    else:
                        ring.deltas[i : i + _NF] = delta
                    ring.next = (ring.next + 1) % slots
                    if ring.count < size:
                        ring.count += 1
                ring.last = new
            for cid in rings.keys() - alive.keys():
                del rings[cid]

    def rows(self, cid: str) -> list[dict[str, int]]:
        """Oldest first; ``timestamp_ns`` at microsecond precision."""
        with self._lock:
            ring = self._rings.get(cid)
            if ring is None:
                return []
            last, d, j, n = ring.last, ring.deltas, ring.next, ring.count - 1
            start = j - n  # the n deltas held, oldest first, end at slot j - 1
            seq = d[start * _NF : j * _NF] if start >= 0 else d[start * _NF :] + d[: j * _NF]
        # one column per field, rebuilt newest to oldest by subtracting deltas, then flipped
        cols = [list(accumulate(reversed(seq[f::_NF]), sub, initial=last[f]))[::-1]
                for f in range(_NF)]
        cols[0] = [us * 1000 for us in cols[0]]
        fields = HISTORY_FIELDS
        return [dict(zip(fields, r, strict=True)) for r in zip(*cols, strict=True)]

    def nbytes(self) -> int:
        """Bytes held by the rings: each delta buffer plus 10 x int64 for each newest row."""
        with self._lock:
            return sum(r.nbytes() for r in self._rings.values())
