"""v2 hugetlb: per page size ``hugetlb.<size>.current`` and the ``max`` count of
``hugetlb.<size>.events`` (cAdvisor's failcnt on v2); v2 keeps no high-water mark, so
max usage is the largest usage this reader has seen (what cAdvisor reports is 0)."""

from __future__ import annotations

from cgroupstats.parse import INT_SIZE, READ_SIZE, Held, parse_flat, pread
from cgroupstats.v1.hugetlb import page_sizes


def parse_events_max(data: bytes) -> int:
    """``max N`` of a hugetlb.<size>.events file (0 when the key is absent)."""
    return int(parse_flat(data).get(b"max", 0))


class Hugetlb:
    def __init__(self, held: Held) -> None:
        self._files = [(size, held.open(f"hugetlb.{size}.current", "int"),
                        held.open(f"hugetlb.{size}.events", "flat"))
                       for size in page_sizes(held.directory, ".current")]
        self._peak: dict[str, int] = {}

    def read(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for size, cur, events in self._files:
            usage = int(pread(cur, INT_SIZE, 0)) if cur >= 0 else 0
            peak = self._peak[size] = max(self._peak.get(size, 0), usage)
            fails = parse_events_max(pread(events, READ_SIZE, 0)) if events >= 0 else 0
            out[size] = (usage, peak, fails)
        return out
