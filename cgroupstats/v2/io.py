"""v2 io: read/write bytes and ops per device from io.stat.

Lines are "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" and may carry more
keys (io.cost's cost.*) that are skipped.
"""

from __future__ import annotations

from cgroupstats.model import IoStats
from cgroupstats.parse import READ_SIZE, Held, pread


def parse_io_stat(data: bytes) -> dict[str, IoStats]:
    out: dict[str, IoStats] = {}
    for line in data.split(b"\n"):
        words = line.split()
        if not words:
            continue
        rb = wb = ro = wo = 0
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
        out[words[0].decode()] = IoStats(rb, wb, ro, wo)
    return out


class Io:
    def __init__(self, held: Held) -> None:
        self._stat = held.open("io.stat", "nested")

    def read(self) -> dict[str, IoStats]:
        if self._stat < 0:
            return {}
        return parse_io_stat(pread(self._stat, READ_SIZE, 0))
