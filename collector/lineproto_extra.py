"""cAdvisor's opt-in categories as InfluxDB lines (beside ``collector.lineproto``'s),
written only for the groups that were read (``Sample.extra``):

=================  ==================  ==============================================
measurement        extra tags          fields
=================  ==================  ==============================================
container_tasks                        sleeping running stopped uninterruptible
                                       iowaiting (counts), load_average_10s
                                       load_d_average_10s (cAdvisor's milli-load)
container_process                      processes file_descriptors sockets threads
                                       threads_max ulimit_max_open_files
container_tcp      family (tcp/tcp6)   one field per cAdvisor tcp_state (established...)
container_udp      family (udp/udp6)   listen dropped rxqueued txqueued
container_hugetlb  pagesize            usage max_usage (bytes) failcnt
container_numa     node, scope         file anon unevictable (pages)
container_cpuset                       memory_migrate
=================  ==================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable

from cgroupstats.model import Extras, PidsStats
from formats.lineproto import line


def extra_lines(tags: str, with_tag: Callable[[str, str], str], ex: Extras,
                pids: PidsStats) -> list[str]:
    """Every opt-in line of one sample without its timestamp (``tags``: its base tag
    set): the encoder keeps them while the objects they were made from are the same
    (readers hand out the same objects while nothing changed) and only stamps them."""
    t = 0
    out: list[str | None] = []
    task = ex.tasks
    if task is not None:
        out.append(line("container_tasks", tags, {
            "sleeping": task.sleeping, "running": task.running, "stopped": task.stopped,
            "uninterruptible": task.uninterruptible, "iowaiting": task.iowait,
            "load_average_10s": task.load, "load_d_average_10s": task.load_d}, t))
    p = ex.processes
    if p is not None:
        out.append(line("container_process", tags, {
            "processes": p.processes, "file_descriptors": p.fds, "sockets": p.sockets,
            "threads": pids.current, "threads_max": pids.max,
            "ulimit_max_open_files": p.max_open_files}, t))
    for family, counts in (("tcp", ex.tcp), ("tcp6", ex.tcp6)):
        if counts:
            out.append(line("container_tcp", with_tag("family", family), dict(counts), t))
    for family, counts in (("udp", ex.udp), ("udp6", ex.udp6)):
        if counts:
            out.append(line("container_udp", with_tag("family", family), dict(counts), t))
    for size, (usage, peak, fails) in ex.hugetlb.items():
        out.append(line("container_hugetlb", with_tag("pagesize", size),
                        {"usage": usage, "max_usage": peak, "failcnt": fails}, t))
    if ex.numa:
        by_node: dict[tuple[str, str], dict[str, object]] = {}
        for (kind, scope, node), pages in ex.numa.items():
            by_node.setdefault((node, scope), {})[kind] = pages
        for (node, scope), fields in by_node.items():
            out.append(line("container_numa", _two(tags, with_tag, node, scope), fields, t))
    if ex.memory_migrate is not None:
        out.append(line("container_cpuset", tags, {"memory_migrate": ex.memory_migrate}, t))
    return [x[:-2] for x in out if x is not None]  # without the " 0" timestamp


def _two(tags: str, with_tag: Callable[[str, str], str], node: str, scope: str) -> str:
    # with_tag adds node; scope is appended (InfluxDB takes tags in any order)
    return with_tag("node", node) + f",scope={scope}"
