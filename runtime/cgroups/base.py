"""The records the runtime and a cgroup driver exchange: the limits it hands over
(``Resources``) and the error of a refused write.

``Resources`` mirrors the resource fields of Docker's ``HostConfig`` (snake_case); the
v1 and v2 drivers turn the same ``Resources`` into their own files. The driver interface
is ``runtime.cgroups.driver``; what a host offers and the checks of a request against it,
``runtime.cgroups.limits``; the file plumbing both versions share, ``runtime.cgroups.files``.
Reading accounting is not here: that is the collector's job (``cgroupstats/``, the
bottom layer).
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
