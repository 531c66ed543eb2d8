"""Docker's device rules: which device nodes a container may create (``m``) and open
(``r``/``w``). Deny everything, then allow moby's default list and each ``--device``;
``--privileged`` lifts the rules. v1 writes them to ``devices.deny``/``devices.allow``,
v2 attaches a BPF_PROG_TYPE_CGROUP_DEVICE program (``runtime.cgroups.devices_bpf``).

Without this, MKNOD (in the default capability set) plus a rootfs that is not ``nodev``
lets a container ``mknod /x b 8 0`` and read the host's disk.
"""

from __future__ import annotations

import os
import stat
from collections import namedtuple

from runtime.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

WILDCARD = -1


class DeviceRule(namedtuple("DeviceRule", "kind major minor access")):
    """``kind`` "c" or "b"; ``major``/``minor`` a number or WILDCARD; ``access`` a subset
    of "rwm"."""

    __slots__ = ()

    def cgroup_v1(self) -> str:
        """The line ``devices.allow`` takes: ``c 1:3 rwm``, ``b *:* m``."""
        def num(n: int) -> str:
            return "*" if n == WILDCARD else str(n)

        return f"{self.kind} {num(self.major)}:{num(self.minor)} {self.access}"


# moby's default allow list (runc's DefaultAllowedDevices): mknod of any node, the simple
# character devices, the console, ptmx and every pty, and tun/tap.
DEFAULT_RULES = (
    DeviceRule("c", WILDCARD, WILDCARD, "m"),
    DeviceRule("b", WILDCARD, WILDCARD, "m"),
    DeviceRule("c", 1, 3, "rwm"),  # null
    DeviceRule("c", 1, 5, "rwm"),  # zero
    DeviceRule("c", 1, 7, "rwm"),  # full
    DeviceRule("c", 1, 8, "rwm"),  # random
    DeviceRule("c", 1, 9, "rwm"),  # urandom
    DeviceRule("c", 5, 0, "rwm"),  # tty
    DeviceRule("c", 5, 1, "rwm"),  # console
    DeviceRule("c", 5, 2, "rwm"),  # ptmx
    DeviceRule("c", 136, WILDCARD, "rwm"),  # /dev/pts/*
    DeviceRule("c", 10, 200, "rwm"),  # tun/tap
)


def device_mappings(values: list[str]) -> list[dict[str, str]]:
    """``--device HOST[:CONTAINER][:rwm]`` -> HostConfig.Devices entries (Docker's keys);
    the host path must be a device node now."""
    out = []
    for value in values:
        parts = value.split(":")
        if len(parts) > 3 or not parts[0]:
            raise InvalidArgument(f"invalid device specification: {value}")
        host = parts[0]
        container, perms = host, "rwm"
        if len(parts) == 3:
            container, perms = parts[1] or host, parts[2]
        elif len(parts) == 2:
            if _is_mode(parts[1]):
                perms = parts[1]
            else:
                container = parts[1]
        if not _is_mode(perms):
            raise InvalidArgument(f"invalid device mode: {perms}")
        if not container.startswith("/"):
            raise InvalidArgument(f"bad format for path: {container}")
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidArgument(f'error gathering device information while adding custom '
                                  f'device "{host}": {e.strerror.lower()}') from None
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise InvalidArgument(f'error gathering device information while adding custom '
                                  f'device "{host}": not a device node')
        out.append({"PathOnHost": host, "PathInContainer": os.path.normpath(container),
                    "CgroupPermissions": perms})
    return out


def _is_mode(text: str) -> bool:
    return bool(text) and all(c in "rwm" for c in text) and len(set(text)) == len(text)


def _node(path: str) -> tuple[str, int, int, int, int, int]:
    """(kind, major, minor, permission bits, uid, gid) of a host device node."""
    st = os.stat(path)
    kind = "b" if stat.S_ISBLK(st.st_mode) else "c"
    return (kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
            st.st_uid, st.st_gid)


def container_nodes(host: dict[str, Any]) -> tuple:
    """The ``--device`` nodes PID 1 creates in the container's /dev: (path, kind, major,
    minor, mode, uid, gid), read from the host device as it is at start."""
    return tuple((d["PathInContainer"], *_node(d["PathOnHost"])) for d in host.get("Devices") or ())


def rules_for(host: dict[str, Any]) -> list[DeviceRule] | None:
    """Allow rules of a container, or None (no rules at all) when privileged."""
    if host.get("Privileged"):
        return None
    rules = list(DEFAULT_RULES)
    for d in host.get("Devices") or ():
        kind, major, minor = _node(d["PathOnHost"])[:3]
        rules.append(DeviceRule(kind, major, minor, d.get("CgroupPermissions") or "rwm"))
    return rules


def apply_device_rules(version: int, cgroup_paths: dict[str, str], host: dict[str, Any]) -> None:
    """Confine the container's cgroup to its device rules (before any process joins)."""
    rules = rules_for(host)
    if version == 2:
        if rules is not None:
            from runtime.cgroups.devices_bpf import attach_device_filter

            attach_device_filter(cgroup_paths["unified"], rules)
        return
    group = cgroup_paths.get("devices")
    if group is None:
        return  # no devices hierarchy mounted: nothing to write to (as runc)
    from runtime.cgroups.files import write_value

    if rules is None:
        write_value(os.path.join(group, "devices.allow"), "a")
        return
    write_value(os.path.join(group, "devices.deny"), "a")
    for rule in rules:
        write_value(os.path.join(group, "devices.allow"), rule.cgroup_v1())
