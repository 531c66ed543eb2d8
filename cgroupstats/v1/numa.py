"""v1 memory.numa_stat (cAdvisor's ``memory_numa`` group): pages per NUMA node.

Lines are ``file=97 N0=97`` (pages, this group: cAdvisor's ``container`` scope) and
``hierarchical_file=... N0=...`` (with descendants: ``hierarchy``). Types are cAdvisor's
three: file, anon, unevictable.
"""

from __future__ import annotations

TYPES = (b"file", b"anon", b"unevictable")


def parse_numa(data: bytes) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if not words:
            continue
        key = words[0].partition(b"=")[0]
        scope = "container"
        if key.startswith(b"hierarchical_"):
            key, scope = key[13:], "hierarchy"
        if key not in TYPES:
            continue
        for word in words[1:]:
            node, _, value = word.partition(b"=")
            out[key.decode(), scope, node[1:].decode()] = int(value)
    return out
