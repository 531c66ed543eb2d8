"""The cgroupfs plumbing both drivers share: one write(2) per value (the kernel's
refusal as a ``CgroupError`` carrying the path), counters and ``cgroup.procs`` read
leniently (a group that is gone has none), rmdir and kill loops that tolerate races."""

from __future__ import annotations

from runtime.cgroups.base import CgroupError


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
