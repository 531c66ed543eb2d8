"""v2 cpuset: the effective cpus and memory nodes (spec only; empty when not enabled)."""

from __future__ import annotations

from cgroupstats.parse import Held


class Cpuset:
    def __init__(self, held: Held) -> None:
        self._held = held
        self._cpus = held.cold("cpuset.cpus.effective", "text")
        self._mems = held.cold("cpuset.mems.effective", "text")

    def read(self) -> tuple[str, str]:
        cpus = self._held.read_cold(self._cpus).strip().decode() if self._cpus else ""
        mems = self._held.read_cold(self._mems).strip().decode() if self._mems else ""
        return cpus, mems
