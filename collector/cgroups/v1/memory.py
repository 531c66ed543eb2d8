"""v1 memory: usage, working set, the memory.stat breakdown, failcnt, OOM kills, spec.

memory.stat's ``total_*`` keys count the whole subtree (use_hierarchy), which is what
cAdvisor and Docker report. Swap comes from ``total_swap`` (present with swap
accounting), so memory.memsw.usage_in_bytes need not be read too.
"""

from __future__ import annotations

from collector.cgroups.parse import READ_SIZE, Held, parse_flat, parse_limit, pread
from collector.model import MemoryStats

OOM_KILL = [b"oom_kill"]


class Memory:
    """Held files of one container's v1 memory group."""

    def __init__(self, held: Held) -> None:
        self._usage = held.open("memory.usage_in_bytes", "int", required=True)
        self._max_usage = held.open("memory.max_usage_in_bytes", "int")
        self._failcnt = held.open("memory.failcnt", "int")
        self._stat = held.open("memory.stat", "flat", required=True)
        self._oom = held.open("memory.oom_control", "flat")
        self._limit = held.open("memory.limit_in_bytes", "limit")
        self._memsw_limit = held.open("memory.memsw.limit_in_bytes", "limit")
        self._soft = held.open("memory.soft_limit_in_bytes", "limit")

    def read(self) -> MemoryStats:
        usage = int(pread(self._usage, READ_SIZE, 0))
        data = pread(self._stat, READ_SIZE, 0)
        # Only the hierarchical half is needed: split from "total_cache" on, which is
        # about half the work of splitting the whole file.
        start = data.find(b"total_cache ")
        stat = parse_flat(data[start:] if start >= 0 else data)
        get = stat.get
        if start >= 0:
            inactive_file = int(get(b"total_inactive_file", 0))
            rss = int(get(b"total_rss", 0))
            cache = int(get(b"total_cache", 0))
            mapped = int(get(b"total_mapped_file", 0))
            swap = int(get(b"total_swap", 0))
            pgfault = int(get(b"total_pgfault", 0))
            pgmajfault = int(get(b"total_pgmajfault", 0))
        else:  # use_hierarchy off on an old kernel: only the group's own counters
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
        limit = parse_limit(pread(self._limit, READ_SIZE, 0)) if self._limit >= 0 else 0
        memsw = 0
        if self._memsw_limit >= 0:
            memsw = parse_limit(pread(self._memsw_limit, READ_SIZE, 0))
        soft = parse_limit(pread(self._soft, READ_SIZE, 0)) if self._soft >= 0 else 0
        return limit, memsw, soft
