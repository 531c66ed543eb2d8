"""``box create``'s network flags, checked before anything exists: the network mode, ``-p``
(host ports free now, on the host and in every box root), ``-P``/``--expose``, ``--ip``,
``--network-alias``, ``--link``; docker's conflict messages."""

from __future__ import annotations

from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.flags import Namespace
from runtime.network.store import NetworkStore, subnet_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.paths import Paths


def _conflict(flag: str, mode: str) -> InvalidArgument:
    return InvalidArgument(f"conflicting options: {flag} and the network mode {mode!r}")


def network_config(paths: Paths, opts: Namespace, host: dict[str, Any],
                   img_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(HostConfig additions, initial NetworkSettings, Config.ExposedPorts)."""
    from runtime.network.ports import parse_expose, parse_publish
    from runtime.state import Store

    mode = host["NetworkMode"]
    bindings = parse_publish(opts.publish)
    exposed = dict(img_cfg.get("ExposedPorts") or {})
    exposed.update(parse_expose(opts.expose))
    for key in bindings:
        exposed.setdefault(key, {})
    extra: dict[str, Any] = {"PortBindings": bindings, "PublishAllPorts": bool(opts.publish_all),
                             "Links": None}
    settings: dict[str, Any] = {"Networks": {}, "Ports": {}}
    store = Store(paths)
    if mode.startswith("container:") or mode == "host" or mode == "none":
        for flag, given in (("--ip", opts.ip), ("--network-alias", opts.network_alias),
                            ("--link", opts.link), ("--add-host", opts.add_host if mode != "none" else None),
                            ("--dns", (opts.dns or opts.dns_search or opts.dns_option) if mode.startswith("container:") else None),
                            ("--hostname", opts.hostname if mode.startswith("container:") else None)):
            if given:
                raise _conflict(flag, mode)
        if bindings or opts.publish_all:
            if mode.startswith("container:"):
                raise InvalidArgument(f"conflicting options: port publishing and the container "
                                      f"type network mode ({mode})")
            raise InvalidArgument(f"conflicting options: port publishing and the network mode {mode}")
        if mode.startswith("container:"):
            ref = mode.partition(":")[2]
            try:
                target = store.resolve(ref)
            except NotFound:
                raise NotFound(f"No such container: {ref} (--network {mode})") from None
            extra["NetworkMode"] = f"container:{target}"
        return extra, settings, exposed
    nets = NetworkStore(paths.root)
    try:
        net = nets.get(mode)
    except NotFound:
        raise NotFound(f"network {mode} not found") from None
    if net["Driver"] != "bridge":
        raise InvalidArgument(f"network {mode} is not a bridge network")
    user = net["Name"] != "bridge"
    if opts.ip and not user:
        raise InvalidArgument(f"user specified IP address (--ip {opts.ip}) is supported on "
                              "user defined networks only")
    if opts.network_alias and not user:
        raise InvalidArgument(f"network-scoped alias (--network-alias {opts.network_alias[0]}) is "
                              "supported only for containers in user defined networks")
    if opts.ip:
        from runtime.network.addr import host_range, in_subnet, ip_to_int, parse_cidr

        subnet, gateway = subnet_of(net)
        value = ip_to_int(opts.ip)
        base, plen = parse_cidr(subnet)
        first, last = host_range(base, plen)
        if not in_subnet(value, base, plen) or not first <= value <= last or opts.ip == gateway:
            raise InvalidArgument(f"invalid address {opts.ip}: it does not belong to the "
                                  f"network's subnet {subnet} (network {net['Name']})")
        from runtime.network.ipam import Ipam

        if opts.ip in Ipam(paths.root, net["Id"], subnet, gateway).allocated():
            raise Conflict(f"Address already in use: {opts.ip}")
    links = []
    for link in opts.link:
        target, _, alias = link.partition(":")
        if not target:
            raise InvalidArgument(f"invalid link: {link!r} (want NAME[:ALIAS])")
        try:
            store.resolve(target)
        except NotFound:
            raise NotFound(f"could not get container for {target} (--link {link})") from None
        links.append(f"{target}:{alias or target}")
    extra["Links"] = links or None
    _check_host_ports(bindings)
    settings["Networks"][net["Name"]] = {
        "IPAMConfig": {"IPv4Address": opts.ip} if opts.ip else None,
        "Links": None, "Aliases": list(opts.network_alias) or None, "NetworkID": net["Id"],
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}
    extra["NetworkMode"] = net["Name"]
    return extra, settings, exposed


def _check_host_ports(bindings: dict[str, list[dict[str, str]]]) -> None:
    """Every explicit host port free now: not twice in this container, not published by
    another container, not held by a host socket."""
    wanted = [(key.partition("/")[2], b["HostIp"], int(b["HostPort"]))
              for key, binds in bindings.items() for b in binds if b["HostPort"]]
    if not wanted:
        return
    from runtime.network.nft import Mapping, Nft, PortConflict
    from runtime.network.ports import probe

    seen: set[tuple[str, int]] = set()
    for proto, host_ip, port in wanted:
        if (proto, port) in seen:
            raise PortConflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already "
                               "allocated (published twice)")
        seen.add((proto, port))
    clash = Nft().conflicts([Mapping(p, ip, port, "", 0) for p, ip, port in wanted])
    if clash:
        raise PortConflict(f"Bind for {clash.host_ip or '0.0.0.0'}:{clash.host_port} failed: port "
                           f"is already allocated (container {clash.owner[:12]})")
    for proto, host_ip, port in wanted:
        probe(proto, host_ip, port)
