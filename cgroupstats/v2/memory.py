"""v2 memory: memory.current/peak, the memory.stat breakdown, memory.events, swap, spec.

Mapped onto the v1 names the model uses: rss = anon, cache = file, mapped_file =
file_mapped, failcnt = the "max" event count (as runc does), max_usage = memory.peak.

memory.peak is read with the limits, as v1's max_usage_in_bytes is: in between, the
reported peak is the larger of the kernel's last mark and every usage seen since.
"""

from __future__ import annotations

from cgroupstats.model import MemoryStats
from cgroupstats.parse import (
    INT_SIZE,
    READ_SIZE,
    Held,
    flat_values,
    parse_limit,
    pread,
    working_set,
)

NO_MEMORY = MemoryStats()
EVENT_KEYS = [b"low", b"high", b"max", b"oom", b"oom_kill"]
STAT_KEYS = (b"inactive_file", b"anon", b"file", b"file_mapped", b"pgfault", b"pgmajfault",
             b"kernel", b"active_file", b"file_dirty", b"file_writeback", b"pgscan",
             b"pgsteal", b"workingset_refault_anon", b"workingset_refault_file")


class Memory:
    """Held files of one container's v2 memory controller (absent files read as 0)."""

    def __init__(self, held: Held) -> None:
        self._current = held.open("memory.current", "int")
        self._held = held
        self._peak = held.cold("memory.peak", "int")
        self._peak_seen = 0
        self._stat = held.open("memory.stat", "flat")
        self._events = held.open("memory.events", "flat")
        self._swap = held.open("memory.swap.current", "int")
        self._max = held.cold("memory.max", "limit")
        self._swap_max = held.cold("memory.swap.max", "limit")
        self._low = held.cold("memory.low", "limit")

    def read(self) -> MemoryStats:
        if self._current < 0:
            return NO_MEMORY  # memory controller not enabled here
        usage = int(pread(self._current, INT_SIZE, 0))
        st = [0] * len(STAT_KEYS)
        if self._stat >= 0:
            st = flat_values(pread(self._stat, READ_SIZE, 0), STAT_KEYS)
        inactive_file, rss, cache, mapped, pgfault, pgmajfault = st[:6]
        high = max_ = oom = oom_kill = 0
        if self._events >= 0:
            words = pread(self._events, READ_SIZE, 0).split()
            if words[0:10:2] == EVENT_KEYS:
                high, max_, oom, oom_kill = (
                    int(words[3]),
                    int(words[5]),
                    int(words[7]),
                    int(words[9]),
                )
            else:
                high, max_, oom, oom_kill = flat_values(b" ".join(words), EVENT_KEYS[1:])
        peak = self._peak_seen
        if usage > peak:
            peak = self._peak_seen = usage
        swap = int(pread(self._swap, INT_SIZE, 0)) if self._swap >= 0 else 0
        return MemoryStats(
            usage,
            working_set(usage, inactive_file),
            rss,
            cache,
            mapped,
            swap,
            max_,
            pgfault,
            pgmajfault,
            peak,
            high,
            max_,
            oom,
            oom_kill,
            kernel=st[6],
            active_file=st[7],
            inactive_file=inactive_file,
            file_dirty=st[8],
            file_writeback=st[9],
            pgscan=st[10],
            pgsteal=st[11],
            refault_anon=st[12],
            refault_file=st[13],
        )

    def read_spec(self) -> tuple[int, int, int]:
        """(limit, swap limit, reservation); 0 when "max". Takes the kernel's peak too."""
        if self._peak:
            self._peak_seen = int(self._held.read_cold(self._peak))
        limit = parse_limit(self._held.read_cold(self._max)) if self._max else 0
        swap_limit = parse_limit(self._held.read_cold(self._swap_max)) if self._swap_max else 0
        low = parse_limit(self._held.read_cold(self._low)) if self._low else 0
        return limit, swap_limit, low
