"""``box update``: new limits for running (or stopped) containers, as ``docker update``.

The limits the user gives are merged into ``hostconfig.json`` by moby's rules
(``UpdateContainer``: only the given fields change; Nano CPUs and a CFS period/quota
exclude each other; a memory limit above the recorded memory+swap needs a new
``--memory-swap``), checked as ``docker run`` checks them, written into the live cgroup
through the container's own driver (v1 or v2) and only then recorded. The kernel's
refusal (a memory limit below what the container uses) is reported as docker reports it.
"""

from __future__ import annotations

import sys
from typing import Any

from runtime.errors import BoxError, Conflict, NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import HOSTCONFIG, Store, is_running, write_json_atomic

# flag dest -> (HostConfig key, Resources field)
_FIELDS = {
    "memory": ("Memory", "memory"), "memory_swap": ("MemorySwap", "memory_swap"),
    "memory_reservation": ("MemoryReservation", "memory_reservation"),
    "cpus": ("NanoCpus", "nano_cpus"), "cpu_shares": ("CpuShares", "cpu_shares"),
    "cpu_period": ("CpuPeriod", "cpu_period"), "cpu_quota": ("CpuQuota", "cpu_quota"),
    "cpuset_cpus": ("CpusetCpus", "cpuset_cpus"), "cpuset_mems": ("CpusetMems", "cpuset_mems"),
    "pids_limit": ("PidsLimit", "pids_limit"), "blkio_weight": ("BlkioWeight", "blkio_weight"),
}


def add_update(p: FlagParser) -> None:
    for names in (("-m", "--memory"), ("--memory-swap",), ("--memory-reservation",),
                  ("--cpus",), ("-c", "--cpu-shares"), ("--cpu-period",), ("--cpu-quota",),
                  ("--cpuset-cpus",), ("--cpuset-mems",), ("--pids-limit",),
                  ("--blkio-weight",), ("--restart",)):
        p.add_argument(*names)
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def _int(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BoxError(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseInt: '
                       f'parsing "{value}": invalid syntax', 125) from None


def parse_update(args: Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The flags given -> (HostConfig keys to change, the new RestartPolicy or None)."""
    from runtime import units

    parsers = {
        "memory": lambda v: units.parse_size(v, "-m, --memory"),
        "memory_swap": units.parse_memory_swap,
        "memory_reservation": lambda v: units.parse_size(v, "--memory-reservation"),
        "cpus": units.parse_cpus,
        "cpu_shares": lambda v: _int(v, "-c, --cpu-shares"),
        "cpu_period": lambda v: _int(v, "--cpu-period"),
        "cpu_quota": lambda v: _int(v, "--cpu-quota"),
        "cpuset_cpus": lambda v: units.parse_cpuset(v, "--cpuset-cpus"),
        "cpuset_mems": lambda v: units.parse_cpuset(v, "--cpuset-mems"),
        "pids_limit": lambda v: _int(v, "--pids-limit"),
        "blkio_weight": lambda v: _int(v, "--blkio-weight"),
    }
    changes = {}
    for dest, parse in parsers.items():
        value = getattr(args, dest)
        if value is not None:
            changes[dest] = parse(value)
    policy = None
    if args.restart is not None:
        from runtime.hostconfig import restart_policy

        policy = restart_policy(args.restart, False)
    if not changes and policy is None:
        raise BoxError("you must provide one or more flags when using this command", 125)
    return changes, policy


def merge(host: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """moby's Container.UpdateContainer on the resources: the new HostConfig, or a
    Conflict with its message."""
    has = {k: host.get(key) or 0 for k, (key, _) in _FIELDS.items()}
    if has["memory"] and not has["memory_swap"]:
        has["memory_swap"] = 2 * has["memory"]  # what docker records for `-m` alone
    new = changes.get
    for given, recorded, what in (("cpus", "cpu_period", "CPU Period"),
                                  ("cpus", "cpu_quota", "CPU Quota")):
        if (new(given) or 0) > 0 and has[recorded] > 0:
            raise Conflict(f"Conflicting options: Nano CPUs cannot be updated as {what} has "
                           "already been set")
        if (new(recorded) or 0) > 0 and has[given] > 0:
            raise Conflict(f"Conflicting options: {what} cannot be updated as NanoCPUs has "
                           "already been set")
    memory = new("memory") or 0
    if memory and memory > has["memory_swap"] and not new("memory_swap"):
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    out = dict(host)
    for dest, value in changes.items():
        key = _FIELDS[dest][0]
        if dest == "pids_limit":
            out[key] = value if value > 0 else None
        elif value or dest in ("memory_swap",):
            out[key] = value
    if memory and not new("memory_swap"):
        out["MemorySwap"] = has["memory_swap"]
    return out


# Resources field -> the host feature it needs; a limit this host cannot apply is warned
# about in docker's words and not recorded (as `box run` does)
_FEATURES = {"memory_reservation": "memory_reservation", "cpu_shares": "cpu_shares",
             "cpu_period": "cpu_cfs", "cpu_quota": "cpu_cfs", "nano_cpus": "cpu_cfs",
             "cpuset_cpus": "cpuset", "cpuset_mems": "cpuset", "pids_limit": "pids",
             "blkio_weight": "blkio_weight"}


def unsupported(changes: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``changes`` without the limits this host lacks, and docker's warnings for them."""
    from runtime.cgroups import open_driver
    from runtime.cgroups.base import Resources

    driver = open_driver()
    features = driver.host().features
    droppable = {_FIELDS[d][1]: v for d, v in changes.items()
                 if _FIELDS[d][1] in _FEATURES and isinstance(v, str | int) and v
                 and not (isinstance(v, int) and v < 0)}
    warnings = driver.warnings(Resources(**droppable)) if droppable else []
    kept = {d: v for d, v in changes.items()
            if _FIELDS[d][1] not in _FEATURES or _FEATURES[_FIELDS[d][1]] in features}
    return kept, warnings


def update_container(paths: Paths, cid: str, changes: dict[str, Any],
                     policy: dict[str, Any] | None) -> None:
    from runtime.cgroups import open_driver
    from runtime.cgroups.base import CgroupError
    from runtime.cgroups.files import translate
    from runtime.cgroups.limits import applicable
    from runtime.journal import container_event
    from runtime.spec import resources_from_hostconfig

    store = Store(paths)
    with store.lock(cid):
        cfg = store.load(cid)
        try:
            host = merge(cfg["HostConfig"], changes)
        except Conflict as e:  # moby: UpdateContainer's refusals are "Cannot update"
            raise Conflict(f"Cannot update container {cid}: {e}") from None
        if policy is not None:
            if host.get("AutoRemove") and policy["Name"] != "no":
                raise Conflict(f"Cannot update container {cid}: Restart policy cannot be "
                               "updated because AutoRemove is enabled for the container")
            host["RestartPolicy"] = policy
        box = cfg.get("Box") or {}
        live = is_running(cfg) and box.get("CgroupPaths")
        driver = open_driver(version=box.get("CgroupVersion") if live else None)
        res = resources_from_hostconfig(host)
        driver.validate(res)
        fields = frozenset(_FIELDS[d][1] for d in changes)
        if live and fields:
            try:
                driver.update(box["CgroupPaths"], applicable(res, driver.host().features),
                              fields)
            except CgroupError as err:
                raise BoxError(f"Cannot update container {cid}: {translate(err)}") from None
            except BoxError as err:
                raise BoxError(f"Cannot update container {cid}: {err}") from None
        write_json_atomic(f"{paths.container_dir(cid)}/{HOSTCONFIG}", host)
    cfg["HostConfig"] = host
    container_event(paths.root, cfg, "update")


def cmd_update(paths: Paths, args: Namespace) -> int:
    try:
        changes, policy = parse_update(args)
    except BoxError as e:  # a bad flag value: docker's CLI refuses it with 125
        e.exit_code, e.command_exit = 125, True
        raise
    try:
        changes, warnings = unsupported(changes)
    except BoxError as e:  # a value docker's daemon refuses for every container
        print(f"box: Error response from daemon: {e}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    store = Store(paths)
    status = 0
    for ref in args.containers:
        try:
            try:
                cid = store.resolve(ref)
            except NotFound as e:
                raise NotFound(f"No such container: {ref}") from e
            update_container(paths, cid, changes, policy)
            print(ref)
        except BoxError as e:
            print(f"box: Error response from daemon: {e}", file=sys.stderr)
            status = 1
    return status
