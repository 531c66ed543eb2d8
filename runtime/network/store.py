"""Network records under ``<root>/network/networks/<id>.json``, in the shape of
``docker network inspect``; the predefined ``bridge``, ``host`` and ``none`` included.

The default bridge's kernel name and subnet come from ``BOX_BRIDGE`` (``box0``) and
``BOX_DEFAULT_SUBNET`` (``172.30.0.0/16``: not Docker's 172.17.0.0/16, not podman's
10.88.0.0/16) the first time the root uses it, and are then fixed in its record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator

from formats.atomicfile import write_atomic
from runtime.errors import Conflict, DamagedState, InvalidArgument, NotFound
from runtime.network.addr import int_to_ip, parse_cidr
from runtime.state import read_state_file
from runtime.state import report_damaged as _report_stderr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BRIDGE = "box0"
DEFAULT_SUBNET = "172.30.0.0/16"
BRIDGE_OPT = "com.docker.network.bridge.name"
PREDEFINED = ("bridge", "host", "none")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# What every reader of a network record relies on, with its type.
_REQUIRED = {"Name": str, "Id": str, "Driver": str, "Scope": str, "IPAM": dict,
             "Options": dict}


class NetworkStore:
    def __init__(self, root: str, report: Callable[[str], None] | None = None) -> None:
        """``report`` gets one line per damaged network file ``all()`` skips (default:
        stderr)."""
        self.root = root
        self.dir = os.path.join(root, "network", "networks")
        self.report = report
        self._held = 0

    # -- records --------------------------------------------------------------
    def _path(self, nid: str) -> str:
        return os.path.join(self.dir, f"{nid}.json")

    def all(self) -> list[dict[str, Any]]:
        self._ensure_predefined()
        out = []
        for entry in sorted(os.scandir(self.dir), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                try:
                    out.append(read_state_file(entry.path, _REQUIRED))
                except FileNotFoundError:
                    continue
                except DamagedState as e:
                    (self.report or _report_stderr)(str(e))
        return out

    def get(self, ref: str) -> dict[str, Any]:
        """By name, full id or unique id prefix. Not found while some record is damaged:
        one NotFound line that names the damaged file too (it may be the one meant)."""
        damaged: list[str] = []
        report, self.report = self.report, damaged.append
        try:
            nets = self.all()
        finally:
            self.report = report
        for net in nets:
            if net["Name"] == ref or net["Id"] == ref:
                return self._follow_env(net)
        try:
            return self._get_by_prefix(ref, nets)
        except NotFound as e:
            if damaged:
                raise NotFound(f"{e} ({damaged[0]})") from None
            raise

    def _follow_env(self, net: dict[str, Any]) -> dict[str, Any]:
        """The default bridge takes ``BOX_DEFAULT_SUBNET``/``BOX_BRIDGE`` as they are now
        for as long as its bridge does not exist yet: a user who hit a subnet clash can
        set them and run again."""
        if net["Name"] != "bridge" or net.get("Options", {}).get(
                "com.docker.network.bridge.default_bridge") != "true":
            return net
        subnet = os.environ.get("BOX_DEFAULT_SUBNET") or DEFAULT_SUBNET
        bridge = os.environ.get("BOX_BRIDGE") or DEFAULT_BRIDGE
        cfg = net["IPAM"]["Config"][0]
        old_bridge = net["Options"].get(BRIDGE_OPT)
        if (cfg["Subnet"], old_bridge) == (subnet, bridge) or os.path.exists(
                f"/sys/class/net/{old_bridge}"):
            return net
        fresh = self.new_record("bridge", subnet, "", bridge=bridge)
        net = {**net, "IPAM": fresh["IPAM"], "Options": {**net["Options"], BRIDGE_OPT: bridge}}
        self.save(net)
        return net

    def _get_by_prefix(self, ref: str, nets: list[dict[str, Any]]) -> dict[str, Any]:
        matches = [n for n in nets if len(ref) >= 3 and n["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"network {ref} not found")

    def save(self, net: dict[str, Any]) -> None:
        os.makedirs(self.dir, exist_ok=True)
        write_atomic(self._path(net["Id"]), json.dumps(net, indent=1).encode(), 0o666)

    def delete(self, net: dict[str, Any]) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(net["Id"]))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialises create/remove of networks in this root. Reentrant: ``create`` holds
        it while ``all()`` may take it again to add the predefined networks (a second
        flock on a new fd of the same file would wait for ourselves forever)."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held = 1
            yield
        finally:
            self._held = 0
            os.close(fd)

    # -- creation -------------------------------------------------------------
    def new_record(self, name: str, subnet: str, gateway: str, bridge: str | None = None,
                   labels: dict[str, str] | None = None, internal: bool = False) -> dict[str, Any]:
        """A validated record (not saved): subnet canonical, gateway inside it."""
        from formats.units import rfc3339nano
        from runtime.network.addr import host_range, ip_to_int
        from runtime.state import new_id

        if not _NAME_RE.match(name):
            raise InvalidArgument(f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                                  'are allowed')
        net, plen = parse_cidr(subnet)
        first, last = host_range(net, plen)
        if gateway:
            gw = ip_to_int(gateway)
            if not first <= gw <= last:
                raise InvalidArgument(f"invalid gateway {gateway}: it does not belong to the "
                                      f"subnet {int_to_ip(net)}/{plen}")
        else:
            gateway = int_to_ip(first)
        nid = new_id()
        return {
            "Name": name, "Id": nid, "Created": rfc3339nano(), "Scope": "local",
            "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": f"{int_to_ip(net)}/{plen}", "Gateway": gateway}]},
            "Internal": internal, "Attachable": False, "Ingress": False,
            "Options": {BRIDGE_OPT: bridge or f"box-{nid[:8]}"},
            "Labels": labels or {},
        }

    def _ensure_predefined(self) -> None:
        """``bridge``, ``host`` and ``none`` exist in every root, as in docker."""
        if os.path.exists(os.path.join(self.dir, ".predefined")):
            return
        with self.lock():
            if os.path.exists(os.path.join(self.dir, ".predefined")):
                return
            names = set()
            for entry in os.scandir(self.dir):
                if entry.name.endswith(".json"):
                    with contextlib.suppress(FileNotFoundError, DamagedState):
                        names.add(read_state_file(entry.path, _REQUIRED)["Name"])
            if "bridge" not in names:
                rec = self.new_record(
                    "bridge",
                    os.environ.get("BOX_DEFAULT_SUBNET") or DEFAULT_SUBNET,
                    "",
                    bridge=os.environ.get("BOX_BRIDGE") or DEFAULT_BRIDGE,
                )
                rec["Options"].update({"com.docker.network.bridge.default_bridge": "true",
                                       "com.docker.network.bridge.enable_ip_masquerade": "true"})
                self.save(rec)
            for name in ("host", "none"):
                if name not in names:
                    rec = self.new_record(name, "10.0.0.0/30", "")
                    rec.update(Driver="null" if name == "none" else "host", Options={},
                               IPAM={"Driver": "default", "Options": {}, "Config": []})
                    self.save(rec)
            with open(os.path.join(self.dir, ".predefined"), "w"):
                pass


def subnet_of(net: dict[str, Any]) -> tuple[str, str]:
    cfg = (net.get("IPAM") or {}).get("Config") or []
    if not cfg:
        raise Conflict(f"network {net['Name']} has no IPv4 subnet")
    return cfg[0]["Subnet"], cfg[0].get("Gateway", "")


def bridge_of(net: dict[str, Any]) -> str:
    return (net.get("Options") or {}).get(BRIDGE_OPT, "")
