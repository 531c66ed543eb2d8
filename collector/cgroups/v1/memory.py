"""v1 memory: usage, working set, the memory.stat breakdown, failcnt, OOM kills, spec.

memory.stat's ``total_*`` keys count the whole subtree (use_hierarchy), which is what
cAdvisor and Docker report. Swap comes from ``total_swap`` (present with swap
accounting), so memory.memsw.usage_in_bytes need not be read too.
"""

from __future__ import annotations

from collector.cgroups.parse import READ_SIZE, Held, parse_flat, parse_limit, pread, read_cold
from collector.model import MemoryStats

OOM_KILL = [b"oom_kill"]
# The hierarchical keys read, in the kernel's order (memcg1_stat_format), so each search
# starts where the previous one ended; a key absent on this kernel (total_swap without
# swap accounting) leaves the position where it was.
TOTAL_KEYS = (
    b"\ntotal_cache ", b"\ntotal_rss ", b"\ntotal_mapped_file ", b"\ntotal_swap ",
    b"\ntotal_pgfault ", b"\ntotal_pgmajfault ", b"\ntotal_inactive_file ",
)  # fmt: skip


def total_fields(data: bytes) -> list[int] | None:
    """The ``TOTAL_KEYS`` values of memory.stat, found with bytes.find instead of splitting
    the ~70 words of the file (a third of the cost); None when the file has no
    hierarchical half (use_hierarchy off on an old kernel)."""
    if data.find(b"\ntotal_cache ") < 0:
        return None
    out = []
    pos = 0
    find = data.find
    for key in TOTAL_KEYS:
        i = find(key, pos)
        if i < 0:
            i = find(key)  # out of the expected order on some kernel
            if i < 0:
                out.append(0)
                continue
        i += len(key)
        pos = find(b"\n", i)
        if pos < 0:
            pos = len(data)
        out.append(int(data[i:pos]))
    return out


class Memory:
    """Held files of one container's v1 memory group."""

    def __init__(self, held: Held) -> None:
        self._usage = held.open("memory.usage_in_bytes", "int", required=True)
        self._max_usage = held.open("memory.max_usage_in_bytes", "int")
        self._failcnt = held.open("memory.failcnt", "int")
        self._stat = held.open("memory.stat", "flat", required=True)
        self._oom = held.open("memory.oom_control", "flat")
        self._limit = held.cold("memory.limit_in_bytes", "limit")
        self._memsw_limit = held.cold("memory.memsw.limit_in_bytes", "limit")
        self._soft = held.cold("memory.soft_limit_in_bytes", "limit")

    def read(self) -> MemoryStats:
        usage = int(pread(self._usage, READ_SIZE, 0))
        data = pread(self._stat, READ_SIZE, 0)
        # Only the hierarchical half is needed (what cAdvisor and Docker report).
        totals = total_fields(data)
        if totals is not None:
            cache, rss, mapped, swap, pgfault, pgmajfault, inactive_file = totals
        else:  # use_hierarchy off on an old kernel: only the group's own counters
            get = parse_flat(data).get
            inactive_file = int(get(b"inactive_file", 0))
            rss = int(get(b"rss", 0))
            cache = int(get(b"cache", 0))
            mapped = int(get(b"mapped_file", 0))
            swap = int(get(b"swap", 0))
            pgfault = int(get(b"pgfault", 0))
            pgmajfault = int(get(b"pgmajfault", 0))
        working_set = usage - inactive_file
        if working_set < 0:
            working_set = 0
        max_usage = int(pread(self._max_usage, READ_SIZE, 0)) if self._max_usage >= 0 else 0
        failcnt = int(pread(self._failcnt, READ_SIZE, 0)) if self._failcnt >= 0 else 0
        oom_kill = 0
        if self._oom >= 0:
            # "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" (oom_kill since 4.13)
            words = pread(self._oom, READ_SIZE, 0).split()
            if words[4:5] == OOM_KILL:
                oom_kill = int(words[5])
            else:
                oom_kill = int(parse_flat(b" ".join(words)).get(b"oom_kill", 0))
        return MemoryStats(
            usage,
            working_set,
            rss,
            cache,
            mapped,
            swap,
            failcnt,
            pgfault,
            pgmajfault,
            max_usage,
            0,
            0,
            0,
            oom_kill,
        )

    def read_spec(self) -> tuple[int, int, int]:
        """(limit, memory+swap limit, reservation); 0 when unlimited."""
        limit = parse_limit(read_cold(self._limit)) if self._limit else 0
        memsw = parse_limit(read_cold(self._memsw_limit)) if self._memsw_limit else 0
        soft = parse_limit(read_cold(self._soft)) if self._soft else 0
        return limit, memsw, soft
