"""Pressure stall information: {cpu,memory,io}.pressure of a v2 group.

Also used by the v1 reader on hybrid hosts, where the container's group in the unified
mount carries the pressure files.
"""

from __future__ import annotations

from cgroupstats.model import PsiStats
from cgroupstats.parse import READ_SIZE, Held, parse_psi, pread

EMPTY = PsiStats()


class Psi:
    def __init__(self, held: Held) -> None:
        self._cpu = held.probe("cpu.pressure")
        self._memory = held.probe("memory.pressure")
        self._io = held.probe("io.pressure")

    def read(self) -> PsiStats:
        if self._cpu < 0 and self._memory < 0 and self._io < 0:
            return EMPTY
        return PsiStats(
            parse_psi(pread(self._cpu, READ_SIZE, 0)) if self._cpu >= 0 else None,
            parse_psi(pread(self._memory, READ_SIZE, 0)) if self._memory >= 0 else None,
            parse_psi(pread(self._io, READ_SIZE, 0)) if self._io >= 0 else None,
        )
