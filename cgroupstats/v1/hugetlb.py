"""v1 hugetlb: per page size usage, max usage and failcnt (cAdvisor's HugetlbStats).

Files are ``hugetlb.<size>.usage_in_bytes``, ``.max_usage_in_bytes``, ``.failcnt``, one
triple per size the kernel supports ("2MB", "1GB"), found once in the directory.
"""

from __future__ import annotations

import os

from cgroupstats.parse import INT_SIZE, Held, pread


def page_sizes(directory: str, suffix: str) -> list[str]:
    """The page sizes with a ``hugetlb.<size><suffix>`` file in ``directory``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(n[8:-len(suffix)] for n in names
                  if n.startswith("hugetlb.") and n.endswith(suffix) and n.count(".") == 2)


class Hugetlb:
    def __init__(self, held: Held) -> None:
        self._files: list[tuple[str, int, int, int]] = []
        for size in page_sizes(held.directory, ".usage_in_bytes"):
            self._files.append((size, held.open(f"hugetlb.{size}.usage_in_bytes", "int"),
                                held.open(f"hugetlb.{size}.max_usage_in_bytes", "int"),
                                held.open(f"hugetlb.{size}.failcnt", "int")))

    def read(self) -> dict[str, tuple[int, int, int]]:
        """page size -> (usage, max usage, failcnt); a missing file reads as 0."""
        return {size: (_int(usage), _int(peak), _int(fails))
                for size, usage, peak, fails in self._files}


def _int(fd: int) -> int:
    return int(pread(fd, INT_SIZE, 0)) if fd >= 0 else 0
