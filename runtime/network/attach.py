"""``box network connect`` / ``disconnect``: a stopped container only has its record
changed (attached at its next start); a running one gets (or loses) a veth pair now, in
its live namespace, and every peer's ``/etc/hosts`` is rewritten."""

from __future__ import annotations

import contextlib
import os

from runtime import syscalls as sc
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.network.endpoint import ensure_bridge, host_if, plumb
from runtime.network.hosts import refresh
from runtime.network.ipam import Ipam
from runtime.network.rtnl import Rtnl, mac_for
from runtime.network.store import NetworkStore, bridge_of, subnet_of
from runtime.paths import Paths
from runtime.state import Store, is_running


def _target(paths: Paths, network: str, container: str) -> tuple:
    store = Store(paths)
    cid = store.resolve(container)
    net = NetworkStore(paths.root).get(network)
    cfg = store.load(cid)
    mode = cfg["HostConfig"].get("NetworkMode", "")
    if mode in ("host", "none") or mode.startswith("container:") or net["Driver"] != "bridge":
        raise InvalidArgument(f"container {container} cannot be connected to or disconnected "
                              f"from network {net['Name']} (network mode {mode}, driver "
                              f"{net['Driver']})")
    return store, cid, net


def connect(paths: Paths, network: str, container: str, ip: str | None = None,
            aliases: list[str] | None = None) -> None:
    store, cid, net = _target(paths, network, container)
    name = net["Name"]
    subnet, gateway = subnet_of(net)
    if name == "bridge" and (ip or aliases):
        raise InvalidArgument("user specified IP address and aliases are supported on user "
                              "defined networks only")
    with store.lock(cid):
        cfg = store.load(cid)
        settings = cfg.get("NetworkSettings") or {"Networks": {}, "Ports": {}}
        nets = settings.setdefault("Networks", {})
        if name in nets:
            raise Conflict(f"endpoint with name {cfg['Name'].lstrip('/')} already exists in "
                           f"network {name}")
        entry = {"IPAMConfig": {"IPv4Address": ip} if ip else None, "Links": None,
                 "Aliases": list(aliases or []) or None, "NetworkID": net["Id"], "EndpointID": "",
                 "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}
        if is_running(cfg):
            ensure_bridge(paths.root, net)
            pool = Ipam(paths.root, net["Id"], subnet, gateway)
            addr = pool.allocate(cid, ip)
            endpoint_id = os.urandom(32).hex()
            plen = int(subnet.split("/")[1])
            ep = {"bridge": bridge_of(net), "host_if": host_if(endpoint_id),
                  "ifname": f"eth{len(nets)}", "ip": addr, "prefixlen": plen,
                  "gateway": gateway, "default": False}
            try:
                _plumb_live(cfg["State"]["Pid"], ep)
            except BaseException:
                pool.release(cid)
                raise
            entry.update(EndpointID=endpoint_id, Gateway=gateway, IPAddress=addr, IPPrefixLen=plen,
                         MacAddress=":".join(f"{b:02x}" for b in mac_for(addr)))
        nets[name] = entry
        cfg["NetworkSettings"] = settings
        store.save(cfg)
    refresh(store, {cid}, {name} - {"bridge"})


def _plumb_live(pid: int, ep: dict) -> None:
    """Into a running container's namespace: sockets opened on either side of a setns,
    then back to the host's namespace before anything else happens."""
    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    ctr_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Rtnl() as host:
            sc.setns(ctr_fd, sc.CLONE_NEWNET)
            try:
                ctr = Rtnl()
            finally:
                sc.setns(host_fd, sc.CLONE_NEWNET)
            with ctr:
                try:
                    plumb(host, ctr, host_fd, ep)
                except BaseException:
                    with contextlib.suppress(OSError):
                        host.delete_link(ep["host_if"])
                    raise
    finally:
        os.close(host_fd)
        os.close(ctr_fd)


def disconnect(paths: Paths, network: str, container: str) -> None:
    store, cid, net = _target(paths, network, container)
    name = net["Name"]
    with store.lock(cid):
        cfg = store.load(cid)
        settings = cfg.get("NetworkSettings") or {}
        nets = settings.get("Networks") or {}
        if name not in nets:
            raise NotFound(f"container {container} is not connected to network {name}")
        ep = nets.pop(name)
        if ep.get("EndpointID"):
            with Rtnl() as host:
                host.delete_link(host_if(ep["EndpointID"]))
            subnet, gateway = subnet_of(net)
            Ipam(paths.root, net["Id"], subnet, gateway).release(cid)
        if name == cfg["HostConfig"].get("NetworkMode") and ep.get("IPAddress"):
            settings.update(IPAddress="", IPPrefixLen=0, Gateway="", MacAddress="")
        cfg["NetworkSettings"] = settings
        store.save(cfg)
    refresh(store, {cid}, {name} - {"bridge"})
