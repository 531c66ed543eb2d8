"""v1 pids: the number of tasks and its cap (the cap is also the spec's pids_max)."""

from __future__ import annotations

from collector.cgroups.parse import READ_SIZE, Held, parse_limit, pread, read_cold
from collector.model import PidsStats


class Pids:
    def __init__(self, held: Held) -> None:
        self._current = held.open("pids.current", "int", required=True)
        self._max = held.cold("pids.max", "limit")

    def read(self, limit: int) -> PidsStats:
        """The count, with the cap last read by ``read_spec``."""
        return PidsStats(int(pread(self._current, READ_SIZE, 0)), limit)

    def read_spec(self) -> int:
        return parse_limit(read_cold(self._max)) if self._max else 0
