"""What the runtime asks of a cgroup driver, and the limits it hands over.

``Resources`` mirrors the resource fields of Docker's ``HostConfig`` (snake_case); the
v1 and v2 drivers turn the same ``Resources`` into their own files. Reading accounting is
not here: that is the collector's job (``cgroupstats/``, the bottom layer).
"""

from __future__ import annotations

from collections import namedtuple


# Immutable records as namedtuples, not dataclasses: `dataclasses` costs ~7 ms of import
# on the `box run` path (bench/runtime_start.py).
class DeviceRate(namedtuple("DeviceRate", "path rate")):
    """``path``: host block device (e.g. /dev/vda); ``rate``: bytes/s or ops/s."""

    __slots__ = ()


class DeviceWeight(namedtuple("DeviceWeight", "path weight")):
    __slots__ = ()


_RESOURCE_FIELDS = {
    "memory": 0,  # bytes, 0 = unlimited
    "memory_swap": 0,  # memory+swap bytes; -1 unlimited; 0 = default (2 x memory)
    "memory_reservation": 0,
    "oom_kill_disable": False,
    "nano_cpus": 0,  # --cpus x 1e9
    "cpu_shares": 0,
    "cpu_period": 0,  # microseconds
    "cpu_quota": 0,  # microseconds, -1/0 unlimited
    "cpuset_cpus": "",
    "cpuset_mems": "",
    "pids_limit": 0,  # 0 or -1 unlimited
    "blkio_weight": 0,
    "blkio_device_read_bps": (),  # tuple[DeviceRate, ...]
    "blkio_device_write_bps": (),
    "blkio_device_read_iops": (),
    "blkio_device_write_iops": (),
}


class Resources(namedtuple("Resources", list(_RESOURCE_FIELDS),
                           defaults=list(_RESOURCE_FIELDS.values()))):
    """The resource fields of Docker's HostConfig, in snake_case."""

    __slots__ = ()


class CgroupError(Exception):
    """A cgroup file could not be written; carries the path and the value."""

    def __init__(self, path: str, value: str, reason: str) -> None:
        super().__init__(f"cannot write {value!r} to {path}: {reason}")
        self.path = path
        self.value = value


class Driver:
    """One cgroup version. Paths returned by ``create`` go into the state file.

    The steps both versions take alike live here; a driver supplies ``host``, ``_make``
    (the directories) and ``_apply`` (the limit files)."""

    version: int

    def host(self) -> HostInfo:
        """Online cpus/mems and the features this host's cgroup files offer."""
        raise NotImplementedError

    def validate(self, res: Resources) -> None:
        """Raise runtime.errors.InvalidArgument for limits this host cannot apply."""
        check_resources(res, self.host())

    def warnings(self, res: Resources) -> list[str]:
        """Docker's warnings for limits this host ignores; ``create`` drops those limits."""
        return check_resources(res, self.host())

    def create(self, group: str, res: Resources) -> dict[str, str]:
        """Create ``group`` (e.g. ``box/<id>``), apply ``res``; return {controller: abs path}.

        On failure nothing is left behind.
        """
        group = group.strip("/")
        applied = applicable(res, self.host().features)
        created: list[str] = []
        try:
            paths = self._make(group, created)
            self._apply(paths, applied)
        except CgroupError as err:
            rollback(created)
            raise translate(err) from None
        except BaseException:
            rollback(created)
            raise
        return paths

    def _make(self, group: str, created: list[str]) -> dict[str, str]:
        """mkdir ``group`` wherever this version keeps it, appending each new directory to
        ``created``; return {controller: abs path}."""
        raise NotImplementedError

    def _apply(self, paths: dict[str, str], res: Resources) -> None:
        """Write the limits of ``res`` (already ``applicable``) into the new group."""
        raise NotImplementedError

    def _make_levels(self, top: str, group: str, created: list[str]) -> str:
        """mkdir each level of ``group`` under ``top`` (the last must be new), calling the
        ``_entering``/``_made`` hooks; return the group's path. Retries if a concurrent
        destroy removed the ``box`` parent between our mkdirs."""
        import os

        from runtime.errors import BoxError, Conflict

        parts = group.split("/")
        for attempt in range(5):
            path = top
            try:
                for i, part in enumerate(parts):
                    self._entering(path)
                    path = os.path.join(path, part)
                    try:
                        os.mkdir(path)
                        created.append(path)
                    except FileExistsError:
                        if i == len(parts) - 1:
                            raise Conflict(f"cgroup {path} already exists") from None
                    self._made(path)
                return path
            except FileNotFoundError:
                if attempt == 4:
                    raise BoxError(
                        f"cannot create cgroup {path}: its parent keeps vanishing"
                    ) from None
            except OSError as err:
                if isinstance(err, FileExistsError):
                    raise
                raise BoxError(f"cannot create cgroup {path}: {err.strerror}") from None
        raise AssertionError("unreachable")

    def _entering(self, parent: str) -> None:
        """Called on each parent just before its child is made."""

    def _made(self, path: str) -> None:
        """Called on each level of the group once it exists (new or not)."""

    def attach(self, paths: dict[str, str], pid: int) -> None:
        """Move ``pid`` into every controller's group."""

    def pids(self, paths: dict[str, str]) -> list[int]:
        """Processes in the group (host pids)."""

    def oom_kills(self, paths: dict[str, str]) -> int:
        """How many OOM kills the group has seen."""

    def destroy(self, paths: dict[str, str]) -> None:
        """Kill what is left inside and remove every directory; missing is fine."""

    def freeze(self, paths: dict[str, str], frozen: bool) -> None:
        """Freeze (``docker pause``) or thaw every process of the group; returns once the
        kernel reports the group frozen (or thawed). BoxError when it cannot."""
        raise NotImplementedError

    def frozen(self, paths: dict[str, str]) -> bool:
        """Whether the kernel holds the group frozen."""
        raise NotImplementedError

    def update(self, paths: dict[str, str], res: Resources, fields: frozenset[str]) -> None:
        """``docker update``: write the ``fields`` of ``res`` (the container's limits after
        the update, already ``applicable``) into its live group. A zero or negative value
        of a limit the user gave means unlimited. The kernel's refusal is a CgroupError,
        or a BoxError worded as runc words it (a memory limit below the usage)."""
        raise NotImplementedError


# --- Shared by both drivers ---

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


def device_number(path: str) -> str:
    """``/dev/vda`` -> ``"254:0"``, the key the blkio/io files take."""
    import os

    rdev = os.stat(path).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def translate(err: CgroupError) -> Exception:
    """At the driver's edge: a value the kernel refused (EINVAL, ERANGE) is the user's to
    fix (InvalidArgument); anything else is a BoxError."""
    from runtime.errors import BoxError, InvalidArgument

    if any(w in str(err) for w in ("Invalid argument", "Numerical result out of range")):
        return InvalidArgument(str(err))
    return BoxError(str(err))


def write_value(path: str, value: str, create: bool = False) -> None:
    """One write(2) of ``value``; the kernel's refusal becomes CgroupError(path, value)."""
    import os

    flags = os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise CgroupError(path, value, err.strerror or str(err)) from None


def read_pids(path: str) -> list[int]:
    """``cgroup.procs`` of one group; a group that is gone has none."""
    try:
        with open(path) as f:
            return [int(line) for line in f.read().split()]
    except FileNotFoundError:
        return []


def read_counter(path: str, key: str) -> int:
    """The value of ``key`` in a flat-keyed file (``memory.events``, ``memory.oom_control``)."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except FileNotFoundError:
        pass
    return 0


def read_counter_file(path: str) -> int:
    """A file holding one number (``memory.usage_in_bytes``); 0 when absent."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return 0


def remove_group(paths: list[str]) -> None:
    """rmdir each group, then its ``box`` parent once empty (others may race: that is fine)."""
    import errno
    import os

    from runtime.errors import BoxError

    for path in paths:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise BoxError(f"cannot remove cgroup {path}: {err.strerror}") from None
        parent = os.path.dirname(path)
        if os.path.basename(parent) == "box":
            try:
                os.rmdir(parent)
            except OSError as err:
                if err.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                    raise BoxError(f"cannot remove cgroup {parent}: {err.strerror}") from None


def rollback(created: list[str]) -> None:
    """Remove what a failed ``create`` made, newest first; gone or busy is fine."""
    import errno
    import os

    for path in reversed(created):
        try:
            os.rmdir(path)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                raise


def kill_all(procs_files: list[str]) -> list[int]:
    """SIGKILL every pid listed in the ``cgroup.procs`` files once; return the pids seen."""
    import os
    import signal

    seen = sorted({pid for p in procs_files for pid in read_pids(p)})
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return seen


def kill_until_empty(procs_files: list[str], timeout: float = 2.0) -> list[int]:
    """Kill until every ``cgroup.procs`` is empty or ``timeout`` passes; return who is left."""
    import time

    deadline = time.monotonic() + timeout
    while kill_all(procs_files):
        if time.monotonic() > deadline:
            return sorted({pid for p in procs_files for pid in read_pids(p)})
        time.sleep(0.01)
    return []
