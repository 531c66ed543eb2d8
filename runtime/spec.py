"""From the state file to what the kernel is asked for: cgroup resources, the sandbox
spec of PID 1, and whether an exit is followed by a restart. Pure functions of the
Docker-shaped ``config.v2.json`` + ``hostconfig.json``."""

from __future__ import annotations

import os

from runtime.caps import effective_set
from runtime.cgroups.base import DeviceRate, Resources
from runtime.paths import Paths

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

    from runtime.sandbox import SandboxSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _rates(host: dict[str, Any], key: str) -> tuple[DeviceRate, ...]:
    return tuple(DeviceRate(d["Path"], int(d["Rate"])) for d in host.get(key) or ())


def resources_from_hostconfig(host: dict[str, Any]) -> Resources:
    return Resources(
        memory=host.get("Memory", 0) or 0,
        memory_swap=host.get("MemorySwap", 0) or 0,
        memory_reservation=host.get("MemoryReservation", 0) or 0,
        oom_kill_disable=bool(host.get("OomKillDisable")),
        nano_cpus=host.get("NanoCpus", 0) or 0,
        cpu_shares=host.get("CpuShares", 0) or 0,
        cpu_period=host.get("CpuPeriod", 0) or 0,
        cpu_quota=host.get("CpuQuota", 0) or 0,
        cpuset_cpus=host.get("CpusetCpus", "") or "",
        cpuset_mems=host.get("CpusetMems", "") or "",
        pids_limit=host.get("PidsLimit", 0) or 0,
        blkio_weight=host.get("BlkioWeight", 0) or 0,
        blkio_device_read_bps=_rates(host, "BlkioDeviceReadBps"),
        blkio_device_write_bps=_rates(host, "BlkioDeviceWriteBps"),
        blkio_device_read_iops=_rates(host, "BlkioDeviceReadIOps"),
        blkio_device_write_iops=_rates(host, "BlkioDeviceWriteIOps"),
    )


def sandbox_spec(paths: Paths, cfg: dict[str, Any]) -> SandboxSpec:
    # Imported here: `box run` validates its flags with resources_from_hostconfig before
    # the monitor exists, and the sandbox (ctypes, syscalls) is the monitor's to import.
    from runtime.sandbox import SandboxSpec

    host = cfg["HostConfig"]
    config = cfg["Config"]
    box = cfg.get("Box") or {}
    overlay = paths.overlay_dir(cfg["ID"])
    env = list(config.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, f"PATH={DEFAULT_PATH}")
    env.append(f"HOSTNAME={config.get('Hostname', '')}")
    if config.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    caps = effective_set(host.get("CapAdd") or [], host.get("CapDrop") or [],
                         bool(host.get("Privileged")))
    etc = {}
    for key, target in (("HostnamePath", "/etc/hostname"), ("HostsPath", "/etc/hosts"),
                        ("ResolvConfPath", "/etc/resolv.conf")):
        if cfg.get(key):
            etc[target] = cfg[key]
    return SandboxSpec(
        lower_dirs=list(box.get("LowerDirs") or []),
        upper_dir=os.path.join(overlay, "diff"),
        work_dir=os.path.join(overlay, "work"),
        merged_dir=os.path.join(overlay, "merged"),
        args=[cfg["Path"], *cfg.get("Args", [])],
        env=env,
        hostname=config.get("Hostname", ""),
        user=config.get("User", ""),
        cwd=config.get("WorkingDir") or "/",
        caps=caps,
        privileged=bool(host.get("Privileged")),
        read_only=bool(host.get("ReadonlyRootfs")),
        tty=bool(config.get("Tty")),
        init=bool(host.get("Init")),
        new_uts=host.get("UTSMode") != "host",
        etc_files=etc,
        shm_size=host.get("ShmSize") or 64 * 1024 * 1024,
        mounts=_mounts(cfg.get("MountPoints")),
        devices=_devices(host),
        seccomp=seccomp_program(paths, host, caps),
        no_new_privs="no-new-privileges" in (host.get("SecurityOpt") or ()),
    )


def _mounts(points: dict[str, Any] | None) -> tuple:
    if not points:  # the common case imports nothing more
        return ()
    from runtime.volumes import sandbox_mounts

    return sandbox_mounts(points)


def seccomp_program(paths: Paths, host: dict[str, Any], caps: list[str]) -> bytes | None:
    """The container's compiled seccomp program for ``caps`` (runtime.security.seccomp)."""
    from runtime.security.seccomp import program_for

    return program_for(host, caps, os.path.join(paths.exec_root, "seccomp"))


def _devices(host: dict[str, Any]) -> tuple:
    if not host.get("Devices"):
        return ()
    from runtime.security.devices import container_nodes

    return container_nodes(host)


def restart_decision(cfg: dict[str, Any], exit_code: int) -> bool:
    """Docker's restart manager: no, always, unless-stopped, on-failure[:N]."""
    if cfg.get("HasBeenManuallyStopped") or cfg["HostConfig"].get("AutoRemove"):
        return False
    policy = cfg["HostConfig"].get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = policy.get("MaximumRetryCount") or 0
        return exit_code != 0 and (limit == 0 or cfg.get("RestartCount", 0) < limit)
    return False
