"""A container's network attachment for one monitor lifetime.

``Attachment.setup`` (monitor, before the first child forks): bridges present, an address
from each network's IPAM, host ports held and published (nftables), ``NetworkSettings``
and ``/etc/hosts`` written. ``before_unshare``/``after_unshare`` (first child): the veth
pairs, made from inside the new namespace with the peer placed in the host's, so eth0 is
configured before PID 1 exists. ``after_run`` deletes the host ends (synchronously: a
collector holding the namespace open would otherwise keep the pair alive). ``release``
undoes ``setup``. Any failure in ``setup`` releases what was taken before re-raising.
"""

from __future__ import annotations

import contextlib
import os

from runtime import syscalls as sc
from runtime.errors import BoxError, Conflict, NotFound
from runtime.network import ipam as ipam_mod
from runtime.network.rtnl import Rtnl, mac_for
from runtime.network.store import NetworkStore, bridge_of, subnet_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.paths import Paths


def host_if(endpoint_id: str) -> str:
    return f"vbox{endpoint_id[:8]}"


def ensure_bridge(root: str, net: dict[str, Any]) -> None:
    """Fast path: the bridge exists and its ifalias names this root (one sysfs read).
    Otherwise create it (pyroute2), with its subnet in the nftables NAT set."""
    from runtime.network.bridge import owner, wait_owner

    name = bridge_of(net)
    root = os.path.abspath(root)
    found = owner(name)
    if found == root:
        return
    if found == "":
        found = wait_owner(name)  # another command is creating it right now
        if found == root:
            return
    if found is not None:
        raise Conflict(f"bridge {name} belongs to the box root {found or '(unknown)'}; "
                       "set BOX_BRIDGE and BOX_DEFAULT_SUBNET for this root")
    from runtime.network.bridge import Bridges
    from runtime.network.nft import Nft

    subnet, gateway = subnet_of(net)
    bridges = Bridges()
    bridges.ensure(name, subnet, gateway, root)
    nft = Nft()
    with nft.lock():
        nft.ensure_base(drop_other_forwarding=bridges.enable_forwarding())
    nft.add_subnet(subnet)


class Attachment:
    def __init__(self, paths: Paths, cfg: dict[str, Any]) -> None:
        from runtime.state import Store

        self.paths = paths
        self.cid = cfg["ID"]
        self.store = Store(paths)
        self.mode = cfg["HostConfig"].get("NetworkMode") or "bridge"
        self.endpoints: list[dict[str, Any]] = []
        self.pools: list[ipam_mod.Ipam] = []
        self.mappings: list[Any] = []
        self.sockets: list[Any] = []
        self.netns_fd = -1
        self._host: Rtnl | None = None

    # -- monitor side ---------------------------------------------------------------
    def setup(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """Take addresses and ports; returns the updated state."""
        try:
            if self.mode.startswith("container:"):
                return self._join(self.mode.partition(":")[2])
            return self._attach(cfg)
        except BaseException:
            self.release()
            raise

    def _join(self, ref: str) -> dict[str, Any]:
        from runtime.state import is_running

        try:
            other = self.store.load(self.store.resolve(ref))
        except NotFound:
            raise NotFound(f"cannot join network of a non running container: {ref}") from None
        if not is_running(other) or not other["State"].get("Pid"):
            raise Conflict(f"cannot join network of a non running container: {ref}")
        self.netns_fd = os.open(f"/proc/{other['State']['Pid']}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        return self.store.load(self.cid)

    def _attach(self, cfg: dict[str, Any]) -> dict[str, Any]:
        settings = cfg.get("NetworkSettings") or {}
        wanted = settings.get("Networks") or {self.mode: {}}
        nets = NetworkStore(self.paths.root)
        records: dict[str, dict[str, Any]] = {}
        for index, (name, want) in enumerate(wanted.items()):
            net = nets.get(name)
            ensure_bridge(self.paths.root, net)
            subnet, gateway = subnet_of(net)
            pool = ipam_mod.Ipam(self.paths.root, net["Id"], subnet, gateway)
            want_ip = ((want or {}).get("IPAMConfig") or {}).get("IPv4Address") or None
            self.pools.append(pool)
            ip = pool.allocate(self.cid, want_ip)
            endpoint_id = os.urandom(32).hex()
            plen = int(subnet.split("/")[1])
            self.endpoints.append({"bridge": bridge_of(net), "host_if": host_if(endpoint_id),
                                   "ifname": f"eth{index}", "ip": ip, "prefixlen": plen,
                                   "gateway": gateway, "default": index == 0})
            records[name] = {**(want or {}), "NetworkID": net["Id"], "EndpointID": endpoint_id,
                             "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": plen,
                             "MacAddress": ":".join(f"{b:02x}" for b in mac_for(ip))}
        ports = self._publish(cfg, self.endpoints[0]["ip"]) if self.endpoints else {}
        primary = next(iter(records.values()), {})
        settings = {**settings, "Networks": records, "Ports": ports,
                    "IPAddress": primary.get("IPAddress", ""),
                    "IPPrefixLen": primary.get("IPPrefixLen", 0),
                    "Gateway": primary.get("Gateway", ""),
                    "MacAddress": primary.get("MacAddress", "")}
        updated = self.store.update(self.cid, top_NetworkSettings=settings)
        self._refresh_hosts(set(records))
        return updated

    def _publish(self, cfg: dict[str, Any], ip: str) -> dict[str, Any]:
        from runtime.network.ports import wanted

        exposed = cfg["Config"].get("ExposedPorts") or {}
        want = wanted(cfg["HostConfig"], exposed)
        result: dict[str, Any] = {key: None for key in exposed}
        if not want:
            return result
        from runtime.network.nft import Mapping, Nft
        from runtime.network.ports import hold, port_range

        nft = Nft()
        taken = {(m.proto, m.host_port) for m in nft.mappings()}
        lo, hi = port_range()
        for proto, host_ip, host_port, ctr_port in want:
            if host_port:
                self.sockets.append(hold(proto, host_ip, host_port))
            else:
                host_port = self._free_port(proto, host_ip, lo, hi, taken)
            taken.add((proto, host_port))
            self.mappings.append(Mapping(proto, host_ip, host_port, ip, ctr_port, self.cid))
            result.setdefault(f"{ctr_port}/{proto}", None)
            result[f"{ctr_port}/{proto}"] = [*(result[f"{ctr_port}/{proto}"] or []),
                                             {"HostIp": host_ip or "0.0.0.0",
                                              "HostPort": str(host_port)}]
        nft.publish(self.mappings)
        return result

    def _free_port(self, proto: str, host_ip: str, lo: int, hi: int, taken: set) -> int:
        from runtime.network.ports import PortInUse, hold

        size = hi - lo + 1
        start = int.from_bytes(os.urandom(2), "big") % size
        for i in range(size):
            port = lo + (start + i) % size
            if (proto, port) in taken:
                continue
            try:
                self.sockets.append(hold(proto, host_ip, port))
            except PortInUse:
                continue
            return port
        raise Conflict(f"no free host port in {lo}-{hi} for {proto} (set BOX_PORT_RANGE)")

    def _refresh_hosts(self, networks: set[str]) -> None:
        from runtime.network.hosts import refresh

        refresh(self.store, {self.cid}, networks - {"bridge"})

    # -- first child --------------------------------------------------------------
    def before_unshare(self) -> None:
        """In the host namespace: keep a handle on it for after the unshare."""
        if self.endpoints:
            self.netns_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            self._host = Rtnl()

    def after_unshare(self) -> None:
        """In the container's new namespace (or join another container's)."""
        if self.mode.startswith("container:"):
            sc.setns(self.netns_fd, sc.CLONE_NEWNET)
            return
        if not self.endpoints:
            return
        with Rtnl() as ctr:
            try:
                for ep in self.endpoints:
                    plumb(self._host, ctr, self.netns_fd, ep)
            except BaseException:
                for ep in self.endpoints:
                    with contextlib.suppress(OSError):
                        self._host.delete_link(ep["host_if"])
                raise

    # -- after each run, and at the end ----------------------------------------------
    def after_run(self) -> None:
        """Delete the host ends of this run's veths (and of any ``network connect``ed since)."""
        names = {ep["host_if"] for ep in self.endpoints}
        if self.endpoints:
            with contextlib.suppress(BoxError):
                nets = (self.store.load(self.cid).get("NetworkSettings") or {}).get(
                    "Networks"
                ) or {}
                names |= {host_if(ep["EndpointID"]) for ep in nets.values() if ep.get("EndpointID")}
        if not names:
            return
        with Rtnl() as host:
            for name in sorted(names):
                with contextlib.suppress(OSError):
                    host.delete_link(name)

    def release(self) -> None:
        """Everything ``setup`` (or a later ``network connect``) took: ports, sockets,
        addresses; then the hosts files of peers."""
        errors = []
        if self.mappings:
            from runtime.network.nft import Nft

            try:
                Nft().unpublish(self.mappings)
            except BoxError as e:
                errors.append(e)
            self.mappings = []
        for s in self.sockets:
            s.close()
        self.sockets = []
        self.after_run()
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1
        pools = {p.path: p for p in self.pools}
        self.pools = []
        if self.endpoints:
            self.endpoints = []
            try:
                cfg = self.store.load(self.cid)
            except BoxError:
                cfg = {}
            settings = cfg.get("NetworkSettings") or {}
            names = set(settings.get("Networks") or {})
            store = NetworkStore(self.paths.root)
            for name in names:
                with contextlib.suppress(BoxError):
                    net = store.get(name)
                    subnet, gateway = subnet_of(net)
                    pool = ipam_mod.Ipam(self.paths.root, net["Id"], subnet, gateway)
                    pools.setdefault(pool.path, pool)
            for pool in pools.values():
                pool.release(self.cid)
            if cfg:
                with contextlib.suppress(BoxError):
                    self.store.update(self.cid, top_NetworkSettings=cleared(settings))
                self._refresh_hosts(names)
        else:
            for pool in pools.values():
                pool.release(self.cid)
        if errors:
            raise errors[0]


def cleared(settings: dict[str, Any] | None) -> dict[str, Any]:
    """``NetworkSettings`` of a stopped container: the networks it is on, no addresses."""
    settings = dict(settings or {})
    nets = {}
    for name, ep in (settings.get("Networks") or {}).items():
        nets[name] = {**ep, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                      "MacAddress": ""}
    settings.update(Networks=nets, Ports={}, SandboxKey="", IPAddress="", IPPrefixLen=0,
                    Gateway="", MacAddress="")
    return settings


def plumb(host: Rtnl, ctr: Rtnl, host_ns_fd: int, ep: dict[str, Any]) -> None:
    """One veth pair: ``ifname`` in the container (address, up, default route), its peer
    ``host_if`` in the host on the bridge."""
    bridge = host.link_index(ep["bridge"])
    if bridge is None:
        raise BoxError(f"bridge {ep['bridge']} is gone")
    ctr.add_veth(ep["ifname"], ep["host_if"], host_ns_fd, mac=mac_for(ep["ip"]))
    peer = host.link_index(ep["host_if"])
    host.set_link(peer, up=True, master=bridge)
    index = ctr.link_index(ep["ifname"])
    ctr.add_address(index, ep["ip"], ep["prefixlen"])
    ctr.set_link(index, up=True)
    if ep.get("default"):
        ctr.add_default_route(ep["gateway"], index)


def release_dead(paths: Paths, cfg: dict[str, Any]) -> None:
    """What a killed monitor could not release: host veths, addresses, published ports."""
    settings = cfg.get("NetworkSettings") or {}
    nets = settings.get("Networks") or {}
    if not nets:
        return
    with Rtnl() as host:
        for ep in nets.values():
            if ep.get("EndpointID"):
                with contextlib.suppress(OSError):
                    host.delete_link(host_if(ep["EndpointID"]))
    store = NetworkStore(paths.root)
    for name in nets:
        with contextlib.suppress(BoxError):
            net = store.get(name)
            subnet, gateway = subnet_of(net)
            ipam_mod.Ipam(paths.root, net["Id"], subnet, gateway).release(cfg["ID"])
    if settings.get("Ports"):
        from runtime.network.nft import Nft

        nft = Nft()
        nft.unpublish([m for m in nft.mappings() if m.owner == cfg["ID"]])
    from runtime.network.hosts import refresh
    from runtime.state import Store

    cfg["NetworkSettings"] = cleared(settings)
    Store(paths).save(cfg)  # peers' hosts files must no longer list it
    refresh(Store(paths), None, set(nets) - {"bridge"})
