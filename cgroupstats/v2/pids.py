"""v2 pids: the number of tasks and its cap ("max" = unlimited = 0)."""

from __future__ import annotations

from cgroupstats.model import PidsStats
from cgroupstats.parse import INT_SIZE, Held, parse_limit, pread


class Pids:
    def __init__(self, held: Held) -> None:
        self._current = held.open("pids.current", "int")
        self._held = held
        self._max = held.cold("pids.max", "limit")

    def read(self, limit: int) -> PidsStats:
        """The count, with the cap last read by ``read_spec``."""
        current = int(pread(self._current, INT_SIZE, 0)) if self._current >= 0 else 0
        return PidsStats(current, limit)

    def read_spec(self) -> int:
        return parse_limit(self._held.read_cold(self._max)) if self._max else 0
