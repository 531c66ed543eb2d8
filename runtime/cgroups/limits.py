"""Docker's rules for resource limits, apart from the files that hold them: what a
request may ask (``check_resources``: refusals and warnings, in moby's words), what a
host lets through (``applicable``), and the cpuset and CFS arithmetic both drivers and
the flag parser share."""

from __future__ import annotations

from collections import namedtuple

from runtime.cgroups.base import Resources

MIN_MEMORY = 6 * 1024 * 1024  # Docker's floor ("Minimum memory limit allowed is 6MB")
MIN_SHARES, MAX_SHARES = 2, 262144  # kernel bounds; Docker clamps into them
CFS_PERIOD = 100_000  # microseconds; the period --cpus uses


class HostInfo(namedtuple("HostInfo", "cpus mems features")):
    """What ``validate`` checks a request against: online cpus/mems (e.g. "0-1", "0") and
    the features (memory, swap, memory_reservation, oom_kill_disable, cpu_shares, cpu_cfs,
    cpuset, pids, blkio_weight, blkio_throttle) this host can apply."""

    __slots__ = ()

    @property
    def ncpu(self) -> int:
        return sum(hi - lo + 1 for lo, hi in cpuset_ranges(self.cpus))


def cpuset_ranges(text: str) -> list[tuple[int, int]]:
    """``"0-1,3"`` -> ``[(0, 1), (3, 3)]`` sorted and merged; ValueError on bad syntax."""
    if text == "":
        return []
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        lo_s, sep, hi_s = part.partition("-")
        if (
            not lo_s.isascii()
            or not lo_s.isdigit()
            or (sep and not (hi_s.isascii() and hi_s.isdigit()))
        ):
            raise ValueError(f"invalid format: {part}")
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
        if hi < lo:
            raise ValueError(f"invalid range format: {part}")
        spans.append((lo, hi))
    spans.sort()
    merged = [spans[0]]
    for lo, hi in spans[1:]:
        last_lo, last_hi = merged[-1]
        if lo <= last_hi + 1:
            merged[-1] = (last_lo, max(last_hi, hi))
        else:
            merged.append((lo, hi))
    return merged


def format_cpuset(spans: list[tuple[int, int]]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in spans)


def affinity_cpus() -> str:
    """The cpus this process may run on, as a cpuset list (the fallback when no cpuset root)."""
    import os

    return format_cpuset(cpuset_ranges(",".join(map(str, sorted(os.sched_getaffinity(0))))))


def _within(requested: list[tuple[int, int]], available: list[tuple[int, int]]) -> bool:
    return all(any(a <= lo and hi <= b for a, b in available) for lo, hi in requested)


_FEATURE = {"cpu_period": "cpu_cfs", "cpu_quota": "cpu_cfs"} | {
    k: "blkio_throttle" for k in ("read_bps", "write_bps", "read_iops", "write_iops")
}
_NOT = "Your kernel does not support "
_UNSUPPORTED = (
    {  # Docker's wording, per ignored limit
        "memory": _NOT
        + "memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
        "swap": _NOT
        + "swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
        "memory_reservation": _NOT
        + "memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
        "oom_kill_disable": _NOT + "OomKillDisable. OomKillDisable discarded.",
        "cpu_shares": _NOT + "CPU shares or the cgroup is not mounted. Shares discarded.",
        "cpu_period": _NOT + "CPU CFS scheduler. CPU period discarded.",
        "cpu_quota": _NOT + "CPU CFS scheduler. CPU quota discarded.",
        "cpuset": _NOT + "cpuset or the cgroup is not mounted. Cpuset discarded.",
        "pids": _NOT
        + "PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
        "blkio_weight": _NOT + "Block I/O weight or the cgroup is not mounted. Weight discarded.",
    }
    | {
        f"{d}_{u}": _NOT + f"{u.upper()} Block I/O {d} limit or the cgroup is not mounted. "
        f"Block I/O {u.upper()} {d} limit discarded."
        for d in ("read", "write")
        for u in ("bps", "iops")
    }
)


def check_resources(res: Resources, host: HostInfo) -> list[str]:
    """Docker's verifyPlatformContainerResources: raise on what it refuses, return its warnings."""
    from runtime.errors import InvalidArgument as bad

    if res.memory and res.memory < MIN_MEMORY:
        raise bad("Minimum memory limit allowed is 6MB")
    if res.memory_swap > 0 and not res.memory:
        raise bad("You should always set the Memory limit when using Memoryswap limit, see usage")
    if res.memory_swap > 0 and res.memory_swap < res.memory:
        raise bad("Minimum memoryswap limit should be larger than memory limit, see usage")
    if res.memory_reservation and res.memory_reservation < MIN_MEMORY:
        raise bad("Minimum memory reservation allowed is 6MB")
    if res.memory and res.memory_reservation > res.memory:
        raise bad("Minimum memory limit can not be less than memory reservation limit, see usage")
    if res.nano_cpus and res.cpu_period:
        raise bad("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if res.nano_cpus and res.cpu_quota:
        raise bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    n = host.ncpu
    if res.nano_cpus < 0 or res.nano_cpus > n * 1_000_000_000 or 0 < res.nano_cpus < 10_000_000:
        raise bad(f"Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available")
    if res.cpu_period and not 1000 <= res.cpu_period <= 1_000_000:
        raise bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if res.cpu_quota > 0 and res.cpu_quota < 1000:
        raise bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if res.blkio_weight and not 10 <= res.blkio_weight <= 1000:
        raise bad("Range of blkio weight is from 10 to 1000")
    for value, what, noun, avail in (
        (res.cpuset_cpus, "cpus", "CPUs", host.cpus),
        (res.cpuset_mems, "mems", "memory nodes", host.mems),
    ):
        try:
            spans = cpuset_ranges(value)
        except ValueError:
            raise bad(f"Invalid value {value} for cpuset {what}") from None
        if spans and "cpuset" in host.features and not _within(spans, cpuset_ranges(avail)):
            raise bad(f"Requested {noun} are not available - requested {value}, available: {avail}")

    has = host.features
    if res.nano_cpus and "cpu_cfs" not in has:
        raise bad(
            "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler "
            "or the cgroup is not mounted"
        )
    asked = {
        "memory": res.memory > 0,
        "swap": res.memory > 0 and res.memory_swap != -1 and "memory" in has,
        "memory_reservation": res.memory_reservation > 0,
        "oom_kill_disable": res.oom_kill_disable,
        "cpu_shares": res.cpu_shares > 0,
        "cpu_period": res.cpu_period > 0,
        "cpu_quota": res.cpu_quota > 0,
        "cpuset": bool(res.cpuset_cpus or res.cpuset_mems),
        "pids": res.pids_limit > 0,
        "blkio_weight": res.blkio_weight > 0,
        "read_bps": bool(res.blkio_device_read_bps),
        "write_bps": bool(res.blkio_device_write_bps),
        "read_iops": bool(res.blkio_device_read_iops),
        "write_iops": bool(res.blkio_device_write_iops),
    }
    warnings = [
        _UNSUPPORTED[key]
        for key, wanted in asked.items()
        if wanted and _FEATURE.get(key, key) not in has
    ]
    if res.oom_kill_disable and "oom_kill_disable" in has and not res.memory:
        warnings.append(
            "OOM killer is disabled for the container, but no memory limit is set, "
            "this can result in the system running out of resources."
        )
    return warnings


def applicable(res: Resources, features: frozenset[str]) -> Resources:
    """``res`` as Docker applies it: unsupported limits dropped (they were warned about),
    swap defaulting to 2 x memory, shares clamped into the kernel's range."""
    swap = res.memory_swap
    if "swap" not in features or not res.memory:
        swap = 0
    elif swap == 0:
        swap = 2 * res.memory
    shares = min(max(res.cpu_shares, MIN_SHARES), MAX_SHARES) if res.cpu_shares else 0
    has = features.__contains__
    return res._replace(
        memory=res.memory if has("memory") else 0,
        memory_swap=swap if has("memory") else 0,
        memory_reservation=res.memory_reservation if has("memory_reservation") else 0,
        oom_kill_disable=res.oom_kill_disable and has("oom_kill_disable"),
        cpu_shares=shares if has("cpu_shares") else 0,
        cpu_period=res.cpu_period if has("cpu_cfs") else 0,
        cpu_quota=res.cpu_quota if has("cpu_cfs") and res.cpu_quota > 0 else 0,
        cpuset_cpus=res.cpuset_cpus if has("cpuset") else "",
        cpuset_mems=res.cpuset_mems if has("cpuset") else "",
        pids_limit=res.pids_limit if has("pids") and res.pids_limit > 0 else 0,
        blkio_weight=res.blkio_weight if has("blkio_weight") else 0,
        **{
            f: getattr(res, f) if has("blkio_throttle") else ()
            for f in ("blkio_device_read_bps", "blkio_device_write_bps",
                      "blkio_device_read_iops", "blkio_device_write_iops")
        },
    )


def cfs_quota_period(res: Resources) -> tuple[int, int]:
    """(quota, period) in microseconds; quota -1 = unlimited, period 0 = leave the default."""
    if res.nano_cpus:
        return res.nano_cpus * CFS_PERIOD // 1_000_000_000, CFS_PERIOD
    return (res.cpu_quota if res.cpu_quota > 0 else -1), res.cpu_period
