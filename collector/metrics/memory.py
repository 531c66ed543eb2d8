"""cAdvisor's ``memory``, ``memory_numa``, ``cpuset`` and ``oom_event`` families.

``container_memory_failcnt`` is a counter, as in cAdvisor, though ``promtool check
metrics`` wants a counter's name to end in ``_total``: cAdvisor's name and TYPE win
(tests/collector/test_cadvisor_families.py says so). pgscan/pgsteal exist on v2 only;
memory.events' high/max likewise.
"""

from __future__ import annotations

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, Family, Values, attr, extra, fams, if_v2


def _faults(s: Sample) -> Values:
    # memory.stat's total_* (v1) and v2's memory.stat are hierarchical; the group-only
    # ("container" scope) counters are not read.
    m = s.memory
    return [(("pgfault", "hierarchy"), m.pgfault), (("pgmajfault", "hierarchy"), m.pgmajfault)]


def families() -> dict[str, list[Family]]:
    return {
        "memory": fams(
            ("container_memory_cache", GAUGE, "Number of bytes of page cache memory.", (),
             attr("memory.cache")),
            ("container_memory_rss", GAUGE, "Size of RSS in bytes.", (), attr("memory.rss")),
            ("container_memory_kernel_usage", GAUGE, "Size of kernel memory allocated in bytes.",
             (), attr("memory.kernel")),
            ("container_memory_mapped_file", GAUGE, "Size of memory mapped files in bytes.", (),
             attr("memory.mapped_file")),
            ("container_memory_swap", GAUGE, "Container swap usage in bytes.", (),
             attr("memory.swap")),
            ("container_memory_failcnt", COUNTER, "Number of memory usage hits limits", (),
             attr("memory.failcnt")),
            ("container_memory_usage_bytes", GAUGE,
             "Current memory usage in bytes, including all memory regardless of when it was "
             "accessed", (), attr("memory.usage")),
            ("container_memory_max_usage_bytes", GAUGE, "Maximum memory usage recorded in bytes",
             (), attr("memory.max_usage")),
            ("container_memory_working_set_bytes", GAUGE, "Current working set in bytes.", (),
             attr("memory.working_set")),
            ("container_memory_total_active_file_bytes", GAUGE,
             "Current total active file in bytes.", (), attr("memory.active_file")),
            ("container_memory_total_inactive_file_bytes", GAUGE,
             "Current total inactive file in bytes.", (), attr("memory.inactive_file")),
            ("container_memory_failures_total", COUNTER,
             "Cumulative count of memory allocation failures.", ("failure_type", "scope"),
             _faults),
            ("container_memory_events_high_total", COUNTER,
             "Cumulative count of memory.high throttle events for the container", (),
             if_v2(attr("memory.events_high"))),
            ("container_memory_events_max_total", COUNTER,
             "Cumulative count of memory.max limit hit events for the container", (),
             if_v2(attr("memory.events_max"))),
            ("container_memory_file_dirty_bytes", GAUGE,
             "Number of bytes of file cache that has been modified but not yet written back "
             "to disk.", (), attr("memory.file_dirty")),
            ("container_memory_file_writeback_bytes", GAUGE,
             "Number of bytes of file cache that is currently being written back to disk.", (),
             attr("memory.file_writeback")),
            ("container_memory_pgscan_total", COUNTER,
             "Cumulative number of pages scanned by the page reclaim algorithm.", (),
             if_v2(attr("memory.pgscan"))),
            ("container_memory_pgsteal_total", COUNTER,
             "Cumulative number of pages reclaimed by the page reclaim algorithm.", (),
             if_v2(attr("memory.pgsteal"))),
            ("container_memory_workingset_refault_file_total", COUNTER,
             "Cumulative number of refaults of previously evicted file pages.", (),
             attr("memory.refault_file")),
            ("container_memory_workingset_refault_anon_total", COUNTER,
             "Cumulative number of refaults of previously evicted anonymous pages.", (),
             attr("memory.refault_anon")),
        ),
        "cpuset": fams(
            ("container_memory_migrate", GAUGE, "Memory migrate status.", (),
             extra("memory_migrate", float)),
        ),
        "memory_numa": fams(
            ("container_memory_numa_pages", GAUGE, "Number of used pages per NUMA node",
             ("type", "scope", "node"), extra("numa", lambda m: list(m.items()), [])),
        ),
        "oom_event": fams(
            ("container_oom_events_total", COUNTER,
             "Count of out of memory events observed for the container", (),
             attr("memory.events_oom_kill")),
        ),
    }
