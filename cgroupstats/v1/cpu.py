"""v1 cpu and cpuacct: usage (total, user, system, per cpu), CFS throttling, cpu spec.

cpu and cpuacct may be separate mounts or co-mounted as ``cpu,cpuacct``; the reader is
handed one directory for each (the same one when co-mounted). user/system come from
cpuacct.stat in USER_HZ ticks, as Docker and cAdvisor read them.

Not cpuacct.usage_all: on current kernels its per-cpu user/system are the tick-sampled
cpustat counters, not adjusted to the scheduler's exact runtime, so their sum is not
cpuacct.usage (1.9% below it on the development host), whereas cpuacct.stat is scaled
so that user + system = usage (cputime_adjust). Reading it instead would change both the
total and the split.

cpuacct.stat is re-read only when usage moved since its last reading: the kernel's
answer is a function of the group's ticks and usage and the previous answer
(cputime_adjust returns the previous split while usage has not grown, and a tick is
counted only while a task of the group runs, which grows usage), so an idle group's
file cannot have changed. Saves ~1.3 us per idle container-sample, exactly.

cpu.stat likewise, with the quota's timer in mind: a group is throttled only while it
runs, and its bandwidth timer, started by running, counts at most two more periods
after the group last ran before it stops (and unthrottles within a period). So the file
is read while usage moves and on until a read lands two periods (plus slack) after the
last move was seen; an idle group's cpu.stat is then known not to change.
"""

from __future__ import annotations

import os
from time import monotonic_ns

from cgroupstats.model import CpuStats
from cgroupstats.parse import (
    INT_SIZE,
    READ_SIZE,
    Held,
    parse_flat,
    parse_limit,
    pread,
)

NS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
STAT_KEYS = [b"user", b"system"]
TIMER_SLACK_NS = 100_000_000  # beyond the two periods: timer latency on a loaded host
CFS_KEYS = [b"nr_periods", b"nr_throttled", b"throttled_time"]
BURST_KEYS = [b"nr_bursts", b"burst_time"]  # cpu.cfs_burst_us's counters (5.14+)


class Cpu:
    """Held files of the cpu and cpuacct groups of one container."""

    def __init__(self, cpu: Held | None, cpuacct: Held | None) -> None:
        self._usage = self._stat = self._percpu = -1
        self._cfs = -1
        self._quota = self._period = self._shares = ""
        self._throttling = (0, 0, 0, 0, 0)  # the last cpu.stat reading
        self._split = (0, 0)  # the last cpuacct.stat reading (user, system ns)
        self._split_usage = -1  # usage when it was taken
        self._cfs_due = True  # read cpu.stat with the next sample whatever the quota
        self._cfs_usage = -1  # usage when the last move was seen
        self._cfs_until = 0  # monotonic ns until which the quota's timer may still count
        self._cfs_read_at = 0  # monotonic ns of the last cpu.stat read
        self._last_raw = b""  # the last cpuacct.usage_percpu content
        self._last = CpuStats(usage_ns=-1)
        if cpuacct is not None:
            # usage is the sum of usage_percpu (the kernel sums the same per-cpu
            # counters), so cpuacct.usage is read only where usage_percpu is missing
            self._percpu = cpuacct.open("cpuacct.usage_percpu", "ints")
            if self._percpu < 0:
                self._usage = cpuacct.open("cpuacct.usage", "int", required=True)
            self._stat = cpuacct.open("cpuacct.stat", "flat")
        # without a usage file nothing says whether the group ran: read the others always
        self._no_usage = self._percpu < 0 and self._usage < 0
        if cpu is not None:
            self._cfs = cpu.open("cpu.stat", "flat", required=True)
            self._cpu_held = cpu
            self._quota = cpu.cold("cpu.cfs_quota_us", "limit")
            self._period = cpu.cold("cpu.cfs_period_us", "int")
            self._shares = cpu.cold("cpu.shares", "int")

    def read(self, quota_period_us: int = 100_000) -> CpuStats:
        """Usage and throttling. ``quota_period_us`` is the CFS period while a quota is
        set (as of the last spec read), 0 without one: then the last cpu.stat reading is
        kept, since its counters count this group's own bandwidth periods, which do not
        run without a quota."""
        usage = user = system = 0
        per_cpu: tuple[int, ...] = ()
        last = self._last
        if self._percpu >= 0:
            raw = pread(self._percpu, READ_SIZE, 0)
            if raw == self._last_raw:  # idle: the same counters as last time
                per_cpu, usage = last.per_cpu_ns, last.usage_ns
            else:
                per_cpu = tuple(map(int, raw.split()))
                usage = sum(per_cpu)
                self._last_raw = raw
        elif self._usage >= 0:
            usage = int(pread(self._usage, INT_SIZE, 0))
        if self._stat >= 0:
            if usage != self._split_usage or self._no_usage:
                self._split = self._read_split()
                self._split_usage = usage
            user, system = self._split
        if self._cfs >= 0 and (quota_period_us or self._cfs_due):
            if usage != self._cfs_usage or self._no_usage:
                now = monotonic_ns()
                self._cfs_usage = usage
                self._cfs_until = now + 2000 * quota_period_us + TIMER_SLACK_NS
                self._cfs_read_at = now
                self._throttling = self._read_cfs()
            elif self._cfs_due or self._cfs_read_at <= self._cfs_until:
                self._cfs_read_at = monotonic_ns()
                self._throttling = self._read_cfs()
            self._cfs_due = False
        periods, throttled, throttled_ns, bursts, burst_ns = self._throttling
        if (usage == last.usage_ns and per_cpu is last.per_cpu_ns and user == last.user_ns
                and system == last.system_ns and throttled_ns == last.throttled_ns
                and periods == last.nr_periods and throttled == last.nr_throttled
                and bursts == last.nr_bursts and burst_ns == last.burst_ns):
            return last  # samples are never changed once made: hand the same one out
        self._last = CpuStats(usage, user, system, per_cpu, periods, throttled, throttled_ns,
                              bursts, burst_ns)
        return self._last

    def _read_split(self) -> tuple[int, int]:
        # "user 107\nsystem 6\n"
        words = pread(self._stat, READ_SIZE, 0).split()
        if words[0:3:2] == STAT_KEYS:
            return int(words[1]) * NS_PER_TICK, int(words[3]) * NS_PER_TICK
        d = parse_flat(b" ".join(words))
        return int(d.get(b"user", 0)) * NS_PER_TICK, int(d.get(b"system", 0)) * NS_PER_TICK

    def _read_cfs(self) -> tuple[int, int, int, int, int]:
        # "nr_periods 25\nnr_throttled 22\nthrottled_time 1052011886\nnr_bursts 0\n
        # burst_time 0\n"
        words = pread(self._cfs, READ_SIZE, 0).split()
        if words[0:5:2] == CFS_KEYS and words[6:9:2] == BURST_KEYS:
            return int(words[1]), int(words[3]), int(words[5]), int(words[7]), int(words[9])
        d = parse_flat(b" ".join(words))
        return (int(d.get(b"nr_periods", 0)), int(d.get(b"nr_throttled", 0)),
                int(d.get(b"throttled_time", 0)), int(d.get(b"nr_bursts", 0)),
                int(d.get(b"burst_time", 0)))

    def read_spec(self) -> tuple[int, int, int]:
        """(quota_us, period_us, shares); quota 0 when unlimited (-1). cpu.stat is read
        with the next sample even without a quota (one may just have been removed)."""
        self._cfs_due = True
        quota = period = shares = 0
        if self._quota:
            quota = parse_limit(self._cpu_held.read_cold(self._quota))
        if self._period:
            period = int(self._cpu_held.read_cold(self._period))
        if self._shares:
            shares = int(self._cpu_held.read_cold(self._shares))
        return quota, period, shares
