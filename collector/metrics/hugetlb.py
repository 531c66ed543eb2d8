"""cAdvisor's ``hugetlb`` families: per page size ("2MB", "1GB") usage, high-water mark
and limit hits, from the hugetlb controller (no series where it is not mounted)."""

from __future__ import annotations

from collections.abc import Callable

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, Family, Values, extra, fams


def _column(i: int) -> Callable[[Sample], Values]:
    return extra("hugetlb", lambda m: [((size,), float(v[i])) for size, v in m.items()], [])


def families() -> dict[str, list[Family]]:
    return {
        "hugetlb": fams(
            ("container_hugetlb_failcnt", COUNTER, "Number of hugepage usage hits limits",
             ("pagesize",), _column(2)),
            ("container_hugetlb_usage_bytes", GAUGE, "Current hugepage usage in bytes",
             ("pagesize",), _column(0)),
            ("container_hugetlb_max_usage_bytes", GAUGE,
             "Maximum hugepage usage recorded in bytes", ("pagesize",), _column(1)),
        ),
    }
