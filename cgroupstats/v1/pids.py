"""v1 pids: the number of tasks and its cap (the cap is also the spec's pids_max)."""

from __future__ import annotations

from cgroupstats.model import PidsStats
from cgroupstats.parse import INT_SIZE, Held, parse_limit, pread


class Pids:
    def __init__(self, held: Held) -> None:
        self._current = held.open("pids.current", "int", required=True)
        self._held = held
        self._max = held.cold("pids.max", "limit")
        self._last = PidsStats(-1)

    def read(self, limit: int) -> PidsStats:
        """The count, with the cap last read by ``read_spec`` (the last object again when
        neither moved: samples are never changed once made)."""
        current = int(pread(self._current, INT_SIZE, 0))
        last = self._last
        if last.current != current or last.max != limit:
            last = self._last = PidsStats(current, limit)
        return last

    def read_spec(self) -> int:
        return parse_limit(self._held.read_cold(self._max)) if self._max else 0
