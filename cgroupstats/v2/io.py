"""v2 io: read/write bytes and ops per device from io.stat.

Lines are "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" and may carry more
keys: io.cost's ``cost.usage/wait/indebt/indelay`` (us) are kept (cAdvisor's IoCost*),
others are skipped. Bytes per operation are Read, Write and Discard (where written).
"""

from __future__ import annotations

from cgroupstats.model import IoStats
from cgroupstats.parse import READ_SIZE, Held, pread

COST = {b"cost.usage": "cost_usage_us", b"cost.wait": "cost_wait_us",
        b"cost.indebt": "cost_indebt_us", b"cost.indelay": "cost_indelay_us"}
COST_ONLY = frozenset({"cost"})


def parse_io_stat(data: bytes) -> dict[str, IoStats]:
    out: dict[str, IoStats] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if not words:
            continue
        rb = wb = ro = wo = 0
        db = -1
        cost: dict[str, int] = {}
        for word in words[1:]:
            key, _, value = word.partition(b"=")
            if key == b"rbytes":
                rb = int(value)
            elif key == b"wbytes":
                wb = int(value)
            elif key == b"rios":
                ro = int(value)
            elif key == b"wios":
                wo = int(value)
            elif key == b"dbytes":
                db = int(value)
            elif key in COST:
                cost[COST[key]] = int(value)
        by_op = {"Read": rb, "Write": wb}
        if db >= 0:
            by_op["Discard"] = db
        io = out[words[0].decode()] = IoStats(rb, wb, ro, wo, by_op=by_op)
        if cost:
            for attr, v in cost.items():
                setattr(io, attr, v)
            io.has = COST_ONLY
    return out


class Io:
    def __init__(self, held: Held) -> None:
        self._stat = held.open("io.stat", "nested")

    def read(self) -> dict[str, IoStats]:
        if self._stat < 0:
            return {}
        return parse_io_stat(pread(self._stat, READ_SIZE, 0))
