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


def network_config(
    paths: Paths, opts: Namespace, host: dict[str, Any], img_cfg: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(HostConfig additions, initial NetworkSettings, Config.ExposedPorts): the ports
    every mode shares, then the mode's own checks (``_shared_mode`` for none, host and
    container:X; ``_bridge_mode`` for a bridge network)."""
    from runtime.network.ports import parse_expose, parse_publish

    mode = host["NetworkMode"]
    bindings = parse_publish(opts.publish)
    exposed = dict(img_cfg.get("ExposedPorts") or {})
    exposed.update(parse_expose(opts.expose))
    for key in bindings:
        exposed.setdefault(key, {})
    extra: dict[str, Any] = {"PortBindings": bindings, "PublishAllPorts": bool(opts.publish_all),
                             "Links": None}
    settings: dict[str, Any] = {"Networks": {}, "Ports": {}}
    if mode.startswith("container:") or mode == "host" or mode == "none":
        extra.update(_shared_mode(paths, opts, mode, bindings))
    else:
        extra.update(_bridge_mode(paths, opts, mode, bindings, settings))
    return extra, settings, exposed


def _shared_mode(paths: Paths, opts: Namespace, mode: str,
                 bindings: dict[str, Any]) -> dict[str, Any]:
    """none, host, container:X: no endpoint of its own, so no address, alias, link or
    published port; container:X is resolved to its id."""
    joins = mode.startswith("container:")
    for flag, given in (("--ip", opts.ip), ("--network-alias", opts.network_alias),
                        ("--link", opts.link),
                        ("--add-host", opts.add_host if mode != "none" else None),
                        ("--dns", (opts.dns or opts.dns_search or opts.dns_option)
                         if joins else None),
                        ("--hostname", opts.hostname if joins else None)):
        if given:
            raise _conflict(flag, mode)
    if bindings or opts.publish_all:
        if joins:
            raise InvalidArgument(f"conflicting options: port publishing and the container "
                                  f"type network mode ({mode})")
        raise InvalidArgument(f"conflicting options: port publishing and the network mode {mode}")
    if not joins:
        return {}
    from runtime.state import Store

    ref = mode.partition(":")[2]
    try:
        target = Store(paths).resolve(ref)
    except NotFound:
        raise NotFound(f"No such container: {ref} (--network {mode})") from None
    return {"NetworkMode": f"container:{target}"}


def _bridge_mode(paths: Paths, opts: Namespace, mode: str, bindings: dict[str, Any],
                 settings: dict[str, Any]) -> dict[str, Any]:
    """A bridge network: its address (--ip), aliases, links and free host ports; the
    endpoint itself is made when the container starts."""
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
        _check_ip(paths, net, opts.ip)
    links = _links(paths, opts.link)
    _check_host_ports(bindings)
    settings["Networks"][net["Name"]] = {
        "IPAMConfig": {"IPv4Address": opts.ip} if opts.ip else None,
        "Links": None, "Aliases": list(opts.network_alias) or None, "NetworkID": net["Id"],
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}
    return {"Links": links or None, "NetworkMode": net["Name"]}


def _check_ip(paths: Paths, net: dict[str, Any], ip: str) -> None:
    """``--ip``: inside the network's subnet, not its gateway, not taken."""
    from runtime.network.addr import host_range, in_subnet, ip_to_int, parse_cidr
    from runtime.network.ipam import Ipam

    subnet, gateway = subnet_of(net)
    value = ip_to_int(ip)
    base, plen = parse_cidr(subnet)
    first, last = host_range(base, plen)
    if not in_subnet(value, base, plen) or not first <= value <= last or ip == gateway:
        raise InvalidArgument(f"invalid address {ip}: it does not belong to the "
                              f"network's subnet {subnet} (network {net['Name']})")
    if ip in Ipam(paths.root, net["Id"], subnet, gateway).allocated():
        raise Conflict(f"Address already in use: {ip}")


def _links(paths: Paths, values: list[str]) -> list[str]:
    """``--link NAME[:ALIAS]`` as ``name:alias``, each target an existing container."""
    from runtime.state import Store

    store = Store(paths)
    links = []
    for link in values:
        target, _, alias = link.partition(":")
        if not target:
            raise InvalidArgument(f"invalid link: {link!r} (want NAME[:ALIAS])")
        try:
            store.resolve(target)
        except NotFound:
            raise NotFound(f"could not get container for {target} (--link {link})") from None
        links.append(f"{target}:{alias or target}")
    return links


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
