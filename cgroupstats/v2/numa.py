"""v2 memory.numa_stat (cAdvisor's ``memory_numa`` group): lines are ``file N0=397312``
in bytes and hierarchical, exported as pages (bytes / page size) in the ``hierarchy``
scope, for cAdvisor's types file, anon, unevictable."""

from __future__ import annotations

import os

from cgroupstats.v1.numa import TYPES

PAGE = os.sysconf("SC_PAGE_SIZE")


def parse_numa(data: bytes) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if not words or words[0] not in TYPES:
            continue
        for word in words[1:]:
            node, _, value = word.partition(b"=")
            out[words[0].decode(), "hierarchy", node[1:].decode()] = int(value) // PAGE
    return out
