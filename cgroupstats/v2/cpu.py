"""v2 cpu: cpu.stat (usage, user, system, CFS throttling) and the cpu.max/cpu.weight spec.

cpu.stat exists in every v2 group; the throttling keys and cpu.max/cpu.weight only when
the cpu controller is enabled for it. Microseconds become nanoseconds here.
"""

from __future__ import annotations

from cgroupstats.model import CpuStats
from cgroupstats.parse import READ_SIZE, Held, parse_flat, pread

BASE_KEYS = [b"usage_usec", b"user_usec", b"system_usec"]


def weight_to_shares(weight: int) -> int:
    """cpu.weight [1, 10000] back to v1 shares [2, 262144] (the KEP-2254 mapping cAdvisor uses)."""
    if not 1 <= weight <= 10000:
        return 0
    return 2 + ((weight - 1) * 262142) // 9999


class Cpu:
    def __init__(self, held: Held) -> None:
        self._stat = held.open("cpu.stat", "flat", required=True)
        self._held = held
        self._max = held.cold("cpu.max", "text")
        self._weight = held.cold("cpu.weight", "int")

    def read(self) -> CpuStats:
        words = pread(self._stat, READ_SIZE, 0).split()
        if words[0:5:2] == BASE_KEYS and len(words) < 9:
            # no cpu controller: just "usage_usec user_usec system_usec nice_usec"
            return CpuStats(int(words[1]) * 1000, int(words[3]) * 1000, int(words[5]) * 1000)
        get = parse_flat(b" ".join(words)).get
        return CpuStats(
            int(get(b"usage_usec", 0)) * 1000,
            int(get(b"user_usec", 0)) * 1000,
            int(get(b"system_usec", 0)) * 1000,
            (),
            int(get(b"nr_periods", 0)),
            int(get(b"nr_throttled", 0)),
            int(get(b"throttled_usec", 0)) * 1000,
            int(get(b"nr_bursts", 0)),
            int(get(b"burst_usec", 0)) * 1000,
        )

    def read_spec(self) -> tuple[int, int, int]:
        """(quota_us, period_us, shares); quota 0 when "max"."""
        quota = period = shares = 0
        if self._max:
            # "max 100000" or "50000 100000"
            q, _, p = self._held.read_cold(self._max).partition(b" ")
            quota = 0 if q == b"max" else int(q)
            period = int(p)
        if self._weight:
            shares = weight_to_shares(int(self._held.read_cold(self._weight)))
        return quota, period, shares
