"""cAdvisor's ``cpu_topology`` group: machine families (``machine_*``), read from sysfs.

cAdvisor's names, labels and units (``lib/metrics/prometheus_machine.go``): every series
carries ``boot_id``, ``machine_id`` and ``system_uuid``; caches per NUMA node and core
(a cache shared only by one core's threads is that core's; one shared wider, such as an
L3, is the node's, with an empty ``core_id``), thread siblings per thread, node memory
(bytes), hugepages per node and page size (kB, as cAdvisor writes it), node distances.
Read from sysfs at most every ``REFRESH`` seconds (a few hundred small files: ~2 ms on
this machine; the topology is fixed and hugepage counts are changed by an administrator),
and the same series served in between.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

GAUGE = "gauge"
REFRESH = 60.0
Series = list[tuple[tuple[str, ...], float]]
BASE = ("boot_id", "machine_id", "system_uuid")
FAMILIES = (
    ("machine_cpu_cache_capacity_bytes", "Cache size in bytes assigned to NUMA node and CPU core.",
     ("node_id", "core_id", "type", "level")),
    ("machine_thread_siblings_count", "Number of CPU thread siblings.",
     ("node_id", "core_id", "thread_id")),
    ("machine_node_memory_capacity_bytes", "Amount of memory assigned to NUMA node.",
     ("node_id",)),
    ("machine_node_hugepages_count", "Numer of hugepages assigned to NUMA node.",
     ("node_id", "page_size")),
    ("machine_node_distance", "Distance between NUMA node and target NUMA node.",
     ("node_id", "target_node_id")),
)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def cpu_list(text: str) -> list[int]:
    """"0-3,8" -> [0, 1, 2, 3, 8]."""
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def size_bytes(text: str) -> int:
    """A sysfs cache size ("32K", "8192K", "1M")."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text and text[-1] in units else int(text or 0)


class Machine:
    """The machine families from ``<sys_root>/devices/system`` and the ids."""

    def __init__(self, sys_root: str = "/sys", proc_root: str = "/proc",
                 etc_root: str = "/etc") -> None:
        self.sys = f"{sys_root}/devices/system"
        self.base = (_read(f"{proc_root}/sys/kernel/random/boot_id"),
                     _read(f"{etc_root}/machine-id"),
                     _read(f"{sys_root}/class/dmi/id/product_uuid"))
        self._cached: list[tuple[str, str, tuple[str, ...], Series]] = []
        self._read_at = 0.0

    def series(self) -> list[tuple[str, str, tuple[str, ...], Series]]:
        """(name, help, extra labels, series) of each family, cAdvisor's order; read
        again once ``REFRESH`` seconds passed."""
        now = time.monotonic()
        if not self._cached or now - self._read_at >= REFRESH:
            self._cached = list(self._read_series())
            self._read_at = now
        return self._cached

    def nodes(self) -> dict[int, list[int]]:
        """NUMA node -> its cpus (one node 0 with every cpu when there is no node dir)."""
        out = {}
        node_dir = f"{self.sys}/node"
        for name in sorted(os.listdir(node_dir)) if os.path.isdir(node_dir) else []:
            if name.startswith("node") and name[4:].isdigit():
                out[int(name[4:])] = cpu_list(_read(f"{node_dir}/{name}/cpulist"))
        return out or {0: cpu_list(_read(f"{self.sys}/cpu/online"))}

    def _read_series(self) -> Iterator[tuple[str, str, tuple[str, ...], Series]]:
        nodes = self.nodes()
        caches: Series = []
        siblings: Series = []
        for node, cpus in nodes.items():
            cores: dict[int, list[int]] = {}
            for cpu in cpus:
                core = _read(f"{self.sys}/cpu/cpu{cpu}/topology/core_id")
                cores.setdefault(int(core or cpu), []).append(cpu)
            node_caches: dict[tuple[str, str], int] = {}
            for core, threads in sorted(cores.items()):
                for t in threads:
                    siblings.append(((str(node), str(core), str(t)), float(len(threads))))
                base = f"{self.sys}/cpu/cpu{threads[0]}/cache"
                for index in sorted(os.listdir(base)) if os.path.isdir(base) else []:
                    if not index.startswith("index"):
                        continue  # power/, uevent
                    d = f"{base}/{index}"
                    kind, level = _read(f"{d}/type"), _read(f"{d}/level")
                    size = size_bytes(_read(f"{d}/size"))
                    shared = set(cpu_list(_read(f"{d}/shared_cpu_list")))
                    if shared <= set(threads):
                        caches.append(((str(node), str(core), kind, level), float(size)))
                    else:
                        node_caches[kind, level] = size
            caches += [((str(node), "", k, lv), float(v)) for (k, lv), v in node_caches.items()]
        memory: Series = []
        hugepages: Series = []
        distance: Series = []
        for node in nodes:
            d = f"{self.sys}/node/node{node}"
            for line in _read(f"{d}/meminfo").splitlines():
                if "MemTotal:" in line:
                    memory.append(((str(node),), float(int(line.split()[-2]) * 1024)))
            hp = f"{d}/hugepages"
            for name in sorted(os.listdir(hp)) if os.path.isdir(hp) else []:
                kb = name.removeprefix("hugepages-").removesuffix("kB")
                count = _read(f"{hp}/{name}/nr_hugepages")
                hugepages.append(((str(node), kb), float(count or 0)))
            for target, value in enumerate(_read(f"{d}/distance").split()):
                distance.append(((str(node), str(target)), float(value)))
        for (name, help_, labels), values in zip(
                FAMILIES, (caches, siblings, memory, hugepages, distance), strict=True):
            yield name, help_, labels, values
