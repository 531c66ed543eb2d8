"""``box run``/``create`` flags -> the container's ``HostConfig``, every value parsed
and refused here (docker's wording), before anything exists; and, once the host's
cgroup features are known, the limits it cannot apply zeroed as docker records them.
Apart from ``create``, which looks things up and writes files: this module only parses.
"""

from __future__ import annotations

import os

from runtime import units
from runtime.errors import InvalidArgument
from runtime.flags import Namespace

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

DEFAULT_NETWORK = "bridge"  # as docker; BOX_DEFAULT_NETWORK overrides (e.g. "none")


def restart_policy(text: str | None, auto_remove: bool) -> dict[str, Any]:
    if not text:
        return {"Name": "no", "MaximumRetryCount": 0}
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f'invalid restart policy "{text}"')
    if count and name != "on-failure":
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count can only be '
                              f'used with \'on-failure\'')
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count must be an '
                              'integer') from None
    if retries < 0:
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count cannot be '
                              'negative')
    if auto_remove and name != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    return {"Name": name, "MaximumRetryCount": retries}


def _int_flag(value: str | None, flag: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseInt: '
                              f'parsing "{value}": invalid syntax') from None


# HostConfig key -> Resources field that docker zeroes (after its warning) when the
# kernel lacks the feature (daemon verifyPlatformContainerResources).
_DROPPABLE = {"MemoryReservation": "memory_reservation", "OomKillDisable": "oom_kill_disable",
              "CpuShares": "cpu_shares", "CpuPeriod": "cpu_period", "CpuQuota": "cpu_quota",
              "CpusetCpus": "cpuset_cpus", "CpusetMems": "cpuset_mems",
              "BlkioWeight": "blkio_weight", "BlkioDeviceReadBps": "blkio_device_read_bps",
              "BlkioDeviceWriteBps": "blkio_device_write_bps",
              "BlkioDeviceReadIOps": "blkio_device_read_iops",
              "BlkioDeviceWriteIOps": "blkio_device_write_iops"}


def drop_unsupported(host: dict[str, Any], res: Any, features: frozenset[str]) -> None:
    """What the kernel cannot do is not recorded as if it were applied."""
    from runtime.cgroups.limits import applicable

    applied = applicable(res, features)
    for key, field in _DROPPABLE.items():
        if getattr(res, field) and not getattr(applied, field):
            host[key] = None if isinstance(host.get(key), list) else type(host[key])()


def _devices(values: list[str]) -> list[dict[str, str]]:
    if not values:
        return []
    from runtime.security.devices import device_mappings

    return device_mappings(values)


def _security_opts(values: list[str]) -> list[str] | None:
    if not values:
        return None
    from runtime.security.seccomp import parse_security_opts

    return parse_security_opts(values) or None


def _parsed(parse: Any, value: str | None, flag: str, default: Any) -> Any:
    """``parse(value, flag)`` for a flag that was given, ``default`` otherwise."""
    return parse(value, flag) if value else default


def _cgroupns_mode(value: str | None) -> str:
    """Docker's default: a private cgroup namespace on a v2 host, the host's on v1."""
    if value in (None, ""):
        return "private" if os.path.isfile("/sys/fs/cgroup/cgroup.controllers") else "host"
    if value not in ("host", "private"):
        raise InvalidArgument(f'invalid argument "{value}" for "--cgroupns" flag: '
                              'must be "host" or "private"')
    return value


def host_config(opts: Namespace) -> dict[str, Any]:
    """Every flag is parsed here, before anything exists; a bad value raises."""
    network = opts.network or os.environ.get("BOX_DEFAULT_NETWORK") or DEFAULT_NETWORK
    if network.startswith("container:") and not network[10:]:
        raise InvalidArgument(f'invalid network mode "{network}": container name missing')
    if opts.log_driver not in ("json-file",):
        raise InvalidArgument(f'logger: no log driver named \'{opts.log_driver}\' is registered '
                              '(supported: json-file)')
    log_opts = {}
    for item in opts.log_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f'invalid argument "{item}" for "--log-opt" flag: expected '
                                  'key=value')
        log_opts[key] = value
    from runtime.logging.options import parse_log_opts

    parse_log_opts(log_opts)
    from runtime.caps import effective_set

    effective_set(opts.cap_add, opts.cap_drop, opts.privileged)  # unknown names fail here
    memory = units.parse_size(opts.memory, "-m, --memory") if opts.memory else 0
    host: dict[str, Any] = {
        "Binds": None,
        "NetworkMode": network,
        "RestartPolicy": restart_policy(opts.restart, opts.rm),
        "AutoRemove": bool(opts.rm),
        "LogConfig": {"Type": "json-file", "Config": log_opts},
        "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None,
        "Privileged": bool(opts.privileged),
        "Devices": _devices(opts.device),
        "SecurityOpt": _security_opts(opts.security_opt),
        "ReadonlyRootfs": bool(opts.read_only),
        "Init": bool(opts.init),
        "CgroupnsMode": _cgroupns_mode(opts.cgroupns),
        "ShmSize": _parsed(units.parse_size, opts.shm_size, "--shm-size", 64 * 1024 * 1024),
        "Memory": memory,
        "MemorySwap": units.parse_memory_swap(opts.memory_swap) if opts.memory_swap else 0,
        "MemoryReservation": _parsed(units.parse_size, opts.memory_reservation,
                                     "--memory-reservation", 0),
        "OomKillDisable": bool(opts.oom_kill_disable),
        "NanoCpus": units.parse_cpus(opts.cpus) if opts.cpus else 0,
        "CpuShares": _int_flag(opts.cpu_shares, "-c, --cpu-shares"),
        "CpuPeriod": _int_flag(opts.cpu_period, "--cpu-period"),
        "CpuQuota": _int_flag(opts.cpu_quota, "--cpu-quota"),
        "CpusetCpus": _parsed(units.parse_cpuset, opts.cpuset_cpus, "--cpuset-cpus", ""),
        "CpusetMems": _parsed(units.parse_cpuset, opts.cpuset_mems, "--cpuset-mems", ""),
        "PidsLimit": _int_flag(opts.pids_limit, "--pids-limit") or None,
        "BlkioWeight": _int_flag(opts.blkio_weight, "--blkio-weight"),
    }
    for key, values, flag, unit in (
        ("BlkioDeviceReadBps", opts.device_read_bps, "--device-read-bps", "bps"),
        ("BlkioDeviceWriteBps", opts.device_write_bps, "--device-write-bps", "bps"),
        ("BlkioDeviceReadIOps", opts.device_read_iops, "--device-read-iops", "iops"),
        ("BlkioDeviceWriteIOps", opts.device_write_iops, "--device-write-iops", "iops"),
    ):
        rates = [units.parse_device_rate(v, flag, unit) for v in values]
        host[key] = [{"Path": r.path, "Rate": r.rate} for r in rates] or None
    return host
