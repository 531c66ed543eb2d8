"""The collector's delta-ring history against the obvious reference: the last ``size``
rows of each container, timestamps floored to microseconds. Pure Python, no kernel."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cgroupstats.model import (
    ContainerRef,
    CpuStats,
    IoStats,
    MemoryStats,
    NetStats,
    PidsStats,
    PsiStats,
    Sample,
    Spec,
)
from collector.history import HISTORY_FIELDS, History

Row = tuple[int, ...]  # the 10 HISTORY_FIELDS values, timestamp in ns


def sample(cid: str, row: Row, *, split: bool = False) -> Sample:
    """A Sample whose history row is ``row``; ``split`` spreads network and block io over
    two interfaces and two devices, so the sums are part of what is checked."""
    ts, cpu, thr, mem, ws, rx, tx, rd, wr, pids = row
    ref = ContainerRef(id=cid, name=cid, image="img", cgroup=f"/box/{cid}",
                       cgroup_version=1, cgroup_paths={})
    if split:
        network = {"eth0": NetStats(rx_bytes=rx // 2, tx_bytes=tx - tx // 3),
                   "eth1": NetStats(rx_bytes=rx - rx // 2, tx_bytes=tx // 3)}
        blkio = {"8:0": IoStats(read_bytes=rd // 5, write_bytes=wr),
                 "8:16": IoStats(read_bytes=rd - rd // 5, write_bytes=0)}
    else:
        network = {"eth0": NetStats(rx_bytes=rx, tx_bytes=tx)}
        blkio = {"8:0": IoStats(read_bytes=rd, write_bytes=wr)}
    return Sample(timestamp_ns=ts, ref=ref, cpu=CpuStats(usage_ns=cpu, throttled_ns=thr),
                  memory=MemoryStats(usage=mem, working_set=ws), blkio=blkio,
                  network=network, pids=PidsStats(current=pids), psi=PsiStats(), spec=Spec())


class Reference:
    """The obvious history: a list of the last ``size`` rows per container."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rings: dict[str, list[dict[str, int]]] = {}

    def record(self, batch: Sequence[tuple[str, Row]], alive: set[str]) -> None:
        if not self.size:
            return
        for cid, row in batch:
            ring = self.rings.setdefault(cid, [])
            ring.append(dict(zip(HISTORY_FIELDS, (row[0] // 1000 * 1000, *row[1:]), strict=True)))
            del ring[: -self.size]
        for cid in [c for c in self.rings if c not in alive]:
            del self.rings[cid]

    def rows(self, cid: str) -> list[dict[str, int]]:
        return self.rings.get(cid, [])


class Both:
    """Feeds the same batches to History and Reference and compares every container."""

    def __init__(self, size: int) -> None:
        self.history, self.ref = History(size), Reference(size)
        self.seen: set[str] = set()

    def record(self, batch: Sequence[tuple[str, Row]], alive: set[str] | None = None,
               split: bool = False) -> None:
        samples = [sample(cid, row, split=split) for cid, row in batch]
        live = {cid for cid, _ in batch} if alive is None else alive
        anything = sample("alive", steady(0))  # History reads only alive's keys
        self.history.record(samples, dict.fromkeys(live, anything))
        self.ref.record(batch, live)
        self.seen |= {cid for cid, _ in batch}

    def check(self) -> None:
        for cid in self.seen:
            assert self.history.rows(cid) == self.ref.rows(cid), cid


def steady(t: int, k: int = 0) -> Row:
    """Row ``t`` of an ordinary container: 1 s steps with sub-us jitter, moderate counters."""
    return (1_700_000_000_123_456_789 + t * 1_000_000_000 + (t * 7919 + k) % 1000,
            10**12 + t * 350_000_000 + k, t * 1_000_000, 200 * 2**20 + (t % 17) * 4096,
            150 * 2**20 - (t % 5) * 4096, 10**9 + t * 1500 * k, 10**8 + t * 900,
            4 * 10**9 + t * 512, 2 * 10**9 + t * 4096, 5 + t % 3)


def test_fewer_rows_than_size_exactly_size_and_wrapping() -> None:
    both = Both(7)
    for t in range(7 * 6 + 3):  # fewer than size, exactly size, then wraps six times
        both.record([("a", steady(t))], split=t % 2 == 1)
        both.check()
        assert len(both.history.rows("a")) == min(t + 1, 7)
    rows = both.history.rows("a")
    assert [r["cpu_usage_ns"] for r in rows] == [10**12 + t * 350_000_000 for t in range(38, 45)]
    assert list(rows[0]) == list(HISTORY_FIELDS)
    assert rows[-1]["timestamp_ns"] % 1000 == 0  # microsecond precision


def test_size_one_keeps_only_the_newest_row() -> None:
    both = Both(1)
    for t in range(5):
        both.record([("a", steady(t))])
        both.check()
    assert len(both.history.rows("a")) == 1


def test_interleaved_containers_and_drop_then_fresh_start() -> None:
    both = Both(5)
    for t in range(12):
        batch = [("a", steady(t, 1)), ("b", steady(t, 2))]
        if t % 3 == 0:
            batch.append(("c", steady(t, 3)))  # c records every third interval, stays alive
        both.record(batch, alive={"a", "b", "c"})
        both.check()
    assert len(both.history.rows("c")) == 4
    both.record([("a", steady(12, 1))], alive={"a"})  # b and c are gone
    assert both.history.rows("b") == [] and both.history.rows("c") == []
    both.check()
    both.record([("a", steady(13, 1)), ("b", steady(100, 2))], alive={"a", "b"})
    assert len(both.history.rows("b")) == 1  # a fresh ring, not the old deltas
    both.check()


def test_size_zero_records_nothing() -> None:
    h = History(0)
    s = sample("a", steady(0))
    h.record([s], {"a": s})
    assert h.rows("a") == [] and h.nbytes() == 0 and h.size == 0


def test_ordinary_container_keeps_int32_then_widens_after_a_huge_jump() -> None:
    size, containers = 300, 3
    both = Both(size)
    for t in range(size + 50):
        both.record([(f"c{k}", steady(t, k)) for k in range(containers)])
    both.check()
    int64_layout = size * len(HISTORY_FIELDS) * 8
    per_container = 128  # the newest absolute row and change
    assert both.history.nbytes() <= containers * (0.55 * int64_layout + per_container)
    before = both.history.nbytes()
    row = list(steady(size + 50, 0))
    row[1] += 2**40  # a many-core burst: 1100 s of cpu in one interval
    both.record([("c0", tuple(row))] + [(f"c{k}", steady(size + 50, k)) for k in (1, 2)])
    both.check()
    # only c0 widened: its deltas now take 8 bytes each, the others still 4
    assert both.history.nbytes() - before == (size - 1) * len(HISTORY_FIELDS) * 4
    for t in range(size + 51, size + 60):  # keeps recording correctly after widening
        row = list(steady(t, 0))
        row[1] += 2**40
        both.record([("c0", tuple(row))] + [(f"c{k}", steady(t, k)) for k in (1, 2)])
        both.check()


def test_counter_reset_and_values_beyond_int64_are_exact() -> None:
    both = Both(4)
    rows = [steady(0), steady(1), (*steady(2)[:1], 0, 0, 0, 0, 0, 0, 0, 0, 1),  # restart
            (*steady(3)[:1], 2**64 - 1, 0, -(2**63), 2**63, 1, 2, 3, 4, 5),
            (*steady(4)[:1], 0, 2**62, 2**63 - 1, -(2**63), 0, 0, 0, 0, 0)]
    for r in rows:
        both.record([("a", r)])
        both.check()


def test_timestamps_jump_more_than_int32_microseconds() -> None:
    both = Both(3)
    for ts in (0, 999, 2**31 * 1000 + 1_999, 2**62, 5):  # 35+ minutes apart, then backwards
        both.record([("a", (ts, *steady(1)[1:]))])
        both.check()


def test_rows_while_recording_from_another_thread() -> None:
    h = History(50)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            rows = h.rows("a")
            stamps = [r["timestamp_ns"] for r in rows]
            assert stamps == sorted(stamps) and len(rows) <= 50

    th = threading.Thread(target=reader)
    th.start()
    try:
        for t in range(2000):
            s = sample("a", steady(t))
            h.record([s], {"a": s})
    finally:
        stop.set()
        th.join()
    assert len(h.rows("a")) == 50


_SPECIAL = st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1])


@st.composite
def _series(draw: st.DrawFn) -> list[Row]:
    """One container's rows: each field mostly creeps by small steps, sometimes jumps to
    anything from 0 to 2**62 (a reset, a spike) or to an edge value, or drops."""
    n = draw(st.integers(1, 60))
    cur = [draw(st.integers(0, 2**62)) for _ in HISTORY_FIELDS]
    out = []
    for _ in range(n):
        for f in range(len(cur)):
            move = draw(st.sampled_from(["same", "step", "step", "down", "jump", "edge"]))
            if move == "step":
                cur[f] += draw(st.integers(0, 2**31))
            elif move == "down":  # a gauge going down
                cur[f] = max(0, cur[f] - draw(st.integers(0, 2**33)))
            elif move == "jump":
                cur[f] = draw(st.integers(0, 2**62))
            elif move == "edge":
                cur[f] = draw(_SPECIAL)
        out.append(tuple(cur))
    return out


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 20), series=st.lists(_series(), min_size=1, max_size=3),
       data=st.data())
def test_rows_equal_the_reference(size: int, series: list[list[Row]], data: st.DataObject) -> None:
    both = Both(size)
    cids = [f"c{k}" for k in range(len(series))]
    longest = max(len(s) for s in series)
    for t in range(longest):
        batch = [(cid, s[t]) for cid, s in zip(cids, series, strict=True) if t < len(s)]
        dropped = data.draw(st.sets(st.sampled_from(cids), max_size=1)) if t % 7 == 6 else set()
        both.record(batch, alive=set(cids) - dropped, split=t % 2 == 0)
        both.check()
