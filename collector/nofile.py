"""The collector's descriptor budget: one reader per container holds its files open for
the container's life (~13 for a v1 reader), so the soft ``RLIMIT_NOFILE`` is raised as
the fleet grows, before opening, rather than failing with EMFILE. Apart from the loop
(``pipeline``), which only says how many containers it is about to hold.
"""

from __future__ import annotations

import resource

FDS_PER_CONTAINER = 16  # a v1 reader holds ~13 (hot files of six controllers, net/dev)
FD_HEADROOM = 256


def ensure_nofile(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to at least ``needed`` (up to the hard limit), as a
    collector holding ~23 files per container must; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if needed <= soft:
        return soft
    target = needed * 2
    if hard != resource.RLIM_INFINITY and target > hard:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too, up to fs.nr_open
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
            return target
        except (ValueError, OSError):
            target = hard
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
