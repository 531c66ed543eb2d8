"""v1 memory: usage, working set, the memory.stat breakdown, failcnt, OOM kills, spec.

memory.stat's ``total_*`` keys count the whole subtree (use_hierarchy), which is what
cAdvisor and Docker report. Swap comes from ``total_swap`` (present with swap
accounting), so memory.memsw.usage_in_bytes need not be read too.

Three files are not read every sample, since each read costs ~1-2 us per container:
- ``memory.max_usage_in_bytes`` (the kernel's high-water mark) is read with the limits;
  between those reads the reported maximum is the larger of that mark and every usage
  seen since, so it never goes down and catches up with the kernel's at the next spec read;
- ``memory.failcnt`` counts hits of this group's own limit: read every sample only while
  a limit is set;
- ``memory.oom_control``'s ``oom_kill`` is read only while the host's OOM-kill counter
  moved (``cgroupstats.oomkills``), and with the limits.
"""

from __future__ import annotations

from operator import itemgetter

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

OOM_KILL = [b"oom_kill"]
# The hierarchical keys read; only the ``total_*`` half of the file is split.
TOTAL_KEYS = (
    b"total_cache", b"total_rss", b"total_mapped_file", b"total_swap",
    b"total_pgfault", b"total_pgmajfault", b"total_inactive_file",
    b"total_active_file", b"total_dirty", b"total_writeback",
    b"total_workingset_refault_anon", b"total_workingset_refault_file",
)
# The group's own counterparts, for a kernel without the hierarchical half.
OWN_KEYS = tuple(k[len(b"total_"):] for k in TOTAL_KEYS)
# Where TOTAL_KEYS sit among the words of the total_ half: learned from the first file
# read and checked on every read (one itemgetter compare), relearned if the kernel's
# layout differs; (key getter, expected keys, value getter, word count). Shared: one kernel.
_positions: tuple[itemgetter, tuple[bytes, ...], itemgetter, int] | None = None


def _learn(words: list[bytes]) -> list[int]:
    global _positions
    d = dict(zip(words[::2], words[1::2], strict=False))
    where = {w: i for i, w in enumerate(words) if not i & 1}
    if all(k in where for k in TOTAL_KEYS):
        keys = [where[k] for k in TOTAL_KEYS]
        _positions = (itemgetter(*keys), TOTAL_KEYS, itemgetter(*[i + 1 for i in keys]), len(words))
    return [int(d.get(k, 0)) for k in TOTAL_KEYS]  # total_swap is absent without swap accounting


def total_fields(data: bytes) -> list[int] | None:
    """The ``TOTAL_KEYS`` values of memory.stat, in that order; None when the file has no
    hierarchical half (use_hierarchy off on an old kernel). Splits only the ``total_``
    half (~40 of ~90 words) and picks the values by learned position: 1.5 us instead of
    3.4 us for seven bytes.find calls."""
    i = data.find(b"\ntotal_")
    if i < 0:
        return None
    words = data[i + 1 :].split()
    pos = _positions
    if pos is not None and len(words) == pos[3] and pos[0](words) == pos[1]:
        return list(map(int, pos[2](words)))
    return _learn(words)


class Memory:
    """Held files of one container's v1 memory group."""

    def __init__(self, held: Held) -> None:
        self._usage = held.open("memory.usage_in_bytes", "int", required=True)
        self._held = held
        self._max_usage = held.cold("memory.max_usage_in_bytes", "int")
        self._failcnt = held.open("memory.failcnt", "int")
        self._stat = held.open("memory.stat", "flat", required=True)
        self._oom = held.open("memory.oom_control", "flat")
        # cAdvisor's kernel usage on v1 (absent when the kernel has no kmem accounting)
        self._kmem = held.open("memory.kmem.usage_in_bytes", "int")
        self._limit = held.cold("memory.limit_in_bytes", "limit")
        self._memsw_limit = held.cold("memory.memsw.limit_in_bytes", "limit")
        self._soft = held.cold("memory.soft_limit_in_bytes", "limit")
        self._last_failcnt = 0
        self._failcnt_due = True  # read at least once per spec read
        self._max_seen = 0  # the kernel's mark at the last spec read, raised by usage since
        self._last_oom_kill = 0
        self._oom_due = True  # read at least once per spec read
        # the last memory.stat content and what was made of it: samples are never changed
        # once made, so an idle group's unchanged reading is handed out again
        self._last_data = b""
        self._last = MemoryStats(usage=-1)

    def read(self, limited: bool = True, oom_may_have_moved: bool = True) -> MemoryStats:
        """``limited=False`` (no limit set, as of the last spec read) keeps the last
        failcnt: it counts hits of this group's own limit and cannot grow without one.
        ``oom_may_have_moved=False`` (the host counted no OOM kill) keeps the last
        oom_kill."""
        usage = int(pread(self._usage, INT_SIZE, 0))
        data = pread(self._stat, READ_SIZE, 0)
        kmem = int(pread(self._kmem, INT_SIZE, 0)) if self._kmem >= 0 else 0
        max_usage = self._max_seen
        if usage > max_usage:
            max_usage = self._max_seen = usage
        if self._failcnt >= 0 and (limited or self._failcnt_due):
            self._last_failcnt = int(pread(self._failcnt, INT_SIZE, 0))
            self._failcnt_due = False
        if self._oom >= 0 and (oom_may_have_moved or self._oom_due):
            self._oom_due = False
            # "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" (oom_kill since 4.13)
            words = pread(self._oom, READ_SIZE, 0).split()
            if words[4:5] == OOM_KILL:
                self._last_oom_kill = int(words[5])
            else:
                (self._last_oom_kill,) = flat_values(b" ".join(words), OOM_KILL)
        last = self._last
        if (data == self._last_data and usage == last.usage and max_usage == last.max_usage
                and self._last_failcnt == last.failcnt
                and self._last_oom_kill == last.events_oom_kill and kmem == last.kernel):
            return last  # an idle group: the same bytes parse the same
        # Only the hierarchical half is needed (what cAdvisor and Docker report).
        totals = total_fields(data)
        if totals is None:  # use_hierarchy off on an old kernel: the group's own counters
            totals = flat_values(data, OWN_KEYS)
        (cache, rss, mapped, swap, pgfault, pgmajfault, inactive_file, active_file, dirty,
         writeback, refault_anon, refault_file) = totals
        self._last_data = data
        self._last = MemoryStats(
            usage,
            working_set(usage, inactive_file),
            rss,
            cache,
            mapped,
            swap,
            self._last_failcnt,
            pgfault,
            pgmajfault,
            max_usage,
            0,
            0,
            0,
            self._last_oom_kill,
            kernel=kmem,
            active_file=active_file,
            inactive_file=inactive_file,
            file_dirty=dirty,
            file_writeback=writeback,
            refault_anon=refault_anon,
            refault_file=refault_file,
        )
        return self._last

    def read_spec(self) -> tuple[int, int, int]:
        """(limit, memory+swap limit, reservation); 0 when unlimited. Also takes the
        kernel's high-water mark, and has failcnt and oom_kill read with the next sample
        whatever the limit and the host's OOM counter say."""
        self._failcnt_due = self._oom_due = True
        if self._max_usage:
            self._max_seen = int(self._held.read_cold(self._max_usage))
        limit = parse_limit(self._held.read_cold(self._limit)) if self._limit else 0
        memsw = parse_limit(self._held.read_cold(self._memsw_limit)) if self._memsw_limit else 0
        soft = parse_limit(self._held.read_cold(self._soft)) if self._soft else 0
        return limit, memsw, soft
