"""v2 cpuset: the effective cpus and memory nodes (spec only; empty when not enabled)."""

from __future__ import annotations

from collector.cgroups.parse import READ_SIZE, Held, pread


class Cpuset:
    def __init__(self, held: Held) -> None:
        self._cpus = held.open("cpuset.cpus.effective", "text")
        self._mems = held.open("cpuset.mems.effective", "text")

    def read(self) -> tuple[str, str]:
        cpus = pread(self._cpus, READ_SIZE, 0).strip().decode() if self._cpus >= 0 else ""
        mems = pread(self._mems, READ_SIZE, 0).strip().decode() if self._mems >= 0 else ""
        return cpus, mems
