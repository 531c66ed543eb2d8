"""``box network create|ls|inspect|rm|connect|disconnect|prune`` and ``box port``."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from runtime.errors import BoxError, Conflict, InvalidArgument, NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store

NET_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NET_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "Labels": "LABELS", "Internal": "INTERNAL", "CreatedAt": "CREATED AT"}
POOL = "172.31.0.0/16"  # user networks without --subnet get a free /24 from BOX_ADDRESS_POOL


def _nets(paths: Paths) -> Any:
    from runtime.network.store import NetworkStore

    return NetworkStore(paths.root)


# -- create -------------------------------------------------------------------------
def add_network_create(p: FlagParser) -> None:
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet")
    p.add_argument("--gateway")
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[], help="Set metadata on a network")
    p.add_argument("-o", "--opt", action="append", default=[],
                   help="Set driver specific options")
    p.add_argument("name", metavar="NETWORK")


def _free_subnet(paths: Paths, taken: list[str]) -> str:
    from runtime.network.addr import int_to_ip, overlaps, parse_cidr
    from runtime.network.bridge import Bridges

    pool = os.environ.get("BOX_ADDRESS_POOL") or POOL
    base, plen = parse_cidr(pool)
    used = [parse_cidr(s, strict=False) for s in taken]
    bridges = Bridges()
    for i in range(1 << max(0, 24 - plen)):
        cand = (base + (i << 8), 24)
        if any(overlaps(cand, u) for u in used):
            continue
        text = f"{int_to_ip(cand[0])}/24"
        if bridges.overlapping_route(text) is None:
            return text
    raise Conflict(f"could not find an available, non-overlapping IPv4 address pool in {pool} "
                   "(set BOX_ADDRESS_POOL or pass --subnet)")


def cmd_network_create(paths: Paths, args: Namespace) -> int:
    try:
        return _create(paths, args)
    except InvalidArgument as e:  # a bad flag value: docker's CLI refuses it with 125
        from runtime.cli import UsageError

        raise UsageError(str(e)) from None


def _create(paths: Paths, args: Namespace) -> int:
    from runtime.network.addr import overlaps, parse_cidr
    from runtime.network.bridge import Bridges
    from runtime.network.endpoint import ensure_bridge
    from runtime.network.nft import Nft
    from runtime.network.store import BRIDGE_OPT, subnet_of

    if args.driver != "bridge":
        raise InvalidArgument(f"plugin \"{args.driver}\" not found (only the bridge driver is "
                              "built in)")
    if args.gateway and not args.subnet:
        raise InvalidArgument("--gateway needs --subnet")
    opts = {}
    for item in args.opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid --opt {item!r}: want key=value")
        opts[key] = value
    bridge = opts.get(BRIDGE_OPT)
    if bridge and (not bridge.startswith("box") or len(bridge) > 15):
        raise InvalidArgument(f"bridge name {bridge!r} must start with 'box' and be at most 15 "
                              "characters")
    labels = dict(item.partition("=")[::2] for item in args.label)
    nets = _nets(paths)
    if args.subnet:
        parse_cidr(args.subnet)  # a bad CIDR fails before anything else is looked at
    with nets.lock():
        existing = nets.all()
        if any(n["Name"] == args.name for n in existing):
            raise Conflict(f"network with name {args.name} already exists")
        taken = [subnet_of(n)[0] for n in existing if (n.get("IPAM") or {}).get("Config")]
        subnet = args.subnet or _free_subnet(paths, taken)
        rec = nets.new_record(args.name, subnet, args.gateway or "", bridge=bridge,
                              labels=labels, internal=args.internal)
        subnet = subnet_of(rec)[0]
        for other in existing:
            cfg = (other.get("IPAM") or {}).get("Config") or []
            if cfg and overlaps(parse_cidr(subnet), parse_cidr(cfg[0]["Subnet"])):
                raise Conflict(f"invalid pool request: Pool overlaps with other one on this "
                               f"address space ({subnet} vs network {other['Name']})")
        nets.save(rec)
        try:
            ensure_bridge(paths.root, rec)
        except BaseException:
            with contextlib.suppress(BoxError, OSError):
                Bridges().delete(rec["Options"][BRIDGE_OPT], os.path.abspath(paths.root))
            with contextlib.suppress(BoxError):
                Nft().delete_subnet(subnet)
            nets.delete(rec)
            raise
    _event(paths, rec, "create")
    print(rec["Id"])
    return 0


def _event(paths: Paths, net: dict[str, Any], action: str, **attrs: str) -> None:
    """moby's LogNetworkEvent(WithAttributes): the network's id, name and driver."""
    from runtime.journal import event

    event(paths.root, "network", action, net["Id"], **attrs, name=net["Name"],
          type=net.get("Driver") or "bridge")


# -- ls / inspect ----------------------------------------------------------------------
class _NetRow:
    def __init__(self, net: dict[str, Any], trunc: bool) -> None:
        self.ID = net["Id"][:12] if trunc else net["Id"]
        self.Name = net["Name"]
        self.Driver = net["Driver"]
        self.Scope = net["Scope"]
        self.Internal = str(net.get("Internal", False)).lower()
        self.CreatedAt = net.get("Created", "")
        self.Labels = ",".join(f"{k}={v}" for k, v in sorted((net.get("Labels") or {}).items()))


def add_network_ls(p: FlagParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")


def cmd_network_ls(paths: Paths, args: Namespace) -> int:
    from runtime.format import render_format

    nets = sorted(_nets(paths).all(), key=lambda n: n["Name"])
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "name":
            nets = [n for n in nets if value in n["Name"]]
        elif key == "driver":
            nets = [n for n in nets if n["Driver"] == value]
        elif key == "type":
            builtin = value == "builtin"
            nets = [n for n in nets if (n["Name"] in ("bridge", "host", "none")) == builtin]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    rows = [_NetRow(n, not args.no_trunc) for n in nets]
    if args.quiet:
        for r in rows:
            print(r.ID)
        return 0
    sys.stdout.write(render_format(args.format, NET_TABLE, rows, NET_HEADERS))
    return 0


def network_view(paths: Paths, net: dict[str, Any]) -> dict[str, Any]:
    """``docker network inspect``: the record plus the running containers on it."""
    members = {}
    for cfg in Store(paths).all():
        ep = ((cfg.get("NetworkSettings") or {}).get("Networks") or {}).get(net["Name"])
        if ep and ep.get("IPAddress"):
            members[cfg["ID"]] = {"Name": cfg["Name"].lstrip("/"), "EndpointID": ep["EndpointID"],
                                  "MacAddress": ep.get("MacAddress", ""),
                                  "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}",
                                  "IPv6Address": ""}
    return {**net, "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": members}


def add_network_inspect(p: FlagParser) -> None:
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+", metavar="NETWORK")


def cmd_network_inspect(paths: Paths, args: Namespace) -> int:
    nets = _nets(paths)
    out, status = [], 0
    for ref in args.names:
        try:
            out.append(network_view(paths, nets.get(ref)))
        except NotFound as e:
            print(f"box: Error: {e}", file=sys.stderr)
            status = 1
    from runtime.inspect import print_inspected

    print_inspected(out, args.format)
    return status


# -- rm / prune -----------------------------------------------------------------------
def _in_use(paths: Paths, name: str) -> list[str]:
    from runtime.state import is_running

    return [c["Name"].lstrip("/") for c in Store(paths).all()
            if name in ((c.get("NetworkSettings") or {}).get("Networks") or {}) and is_running(c)]


def remove_network(paths: Paths, net: dict[str, Any]) -> None:
    """The bridge, its NAT entry, its address pool and its record."""
    from runtime.network.bridge import Bridges
    from runtime.network.ipam import Ipam
    from runtime.network.nft import Nft
    from runtime.network.store import bridge_of, subnet_of

    subnet, gateway = subnet_of(net)
    Bridges().delete(bridge_of(net), os.path.abspath(paths.root))
    Nft().delete_subnet(subnet)
    Ipam(paths.root, net["Id"], subnet, gateway).drop()
    _nets(paths).delete(net)


def add_network_rm(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Do not error if the network does not exist")
    p.add_argument("names", nargs="+", metavar="NETWORK")


def cmd_network_rm(paths: Paths, args: Namespace) -> int:
    nets = _nets(paths)
    status = 0
    for ref in args.names:
        try:
            with nets.lock():
                net = nets.get(ref)
                if net["Name"] in ("bridge", "host", "none"):
                    raise Conflict(f"{net['Name']} is a pre-defined network and cannot be removed")
                users = _in_use(paths, net["Name"])
                if users:
                    raise Conflict(f"error while removing network: network {net['Name']} id "
                                   f"{net['Id']} has active endpoints ({', '.join(users)})")
                remove_network(paths, net)
            _event(paths, net, "destroy")
            print(ref)
        except NotFound:
            if not args.force:
                print(f"box: Error response from daemon: network {ref} not found", file=sys.stderr)
                status = 1
        except BoxError as e:
            print(f"box: Error response from daemon: {e}", file=sys.stderr)
            status = 1
    return status


def add_network_prune(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true")


def cmd_network_prune(paths: Paths, args: Namespace) -> int:
    removed = prune_networks(paths)
    if removed:
        print("Deleted Networks:\n" + "\n".join(removed))
    return 0


def prune_networks(paths: Paths) -> list[str]:
    """User networks no container (in any state) is attached to, removed; their names
    (``box network prune`` and ``box system prune``)."""
    nets = _nets(paths)
    used = set()
    for c in Store(paths).all():
        used |= set((c.get("NetworkSettings") or {}).get("Networks") or {})
        used.add(c["HostConfig"].get("NetworkMode", ""))
    removed = []
    with nets.lock():
        for net in nets.all():
            if net["Name"] not in ("bridge", "host", "none") and net["Name"] not in used:
                remove_network(paths, net)
                _event(paths, net, "destroy")
                removed.append(net["Name"])
    return removed


# -- connect / disconnect ----------------------------------------------------------------
def add_network_connect(p: FlagParser) -> None:
    p.add_argument("--ip")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("network")
    p.add_argument("container")


def cmd_network_connect(paths: Paths, args: Namespace) -> int:
    from runtime.network.attach import connect

    connect(paths, args.network, args.container, args.ip, args.alias)
    _connect_event(paths, args.network, args.container, "connect")
    return 0


def _connect_event(paths: Paths, network: str, container: str, action: str) -> None:
    """moby's (Dis)ConnectToNetwork: an event only for a running container; a stopped
    one's networks change in its config, and its next start journals the connect."""
    from runtime.state import is_running

    store = Store(paths)
    cfg = store.load(store.resolve(container))
    if is_running(cfg):
        _event(paths, _nets(paths).get(network), action, container=cfg["ID"])


def add_network_disconnect(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the container to disconnect from a network")
    p.add_argument("network")
    p.add_argument("container")


def cmd_network_disconnect(paths: Paths, args: Namespace) -> int:
    from runtime.network.attach import disconnect

    disconnect(paths, args.network, args.container)
    _connect_event(paths, args.network, args.container, "disconnect")
    return 0


# -- port ---------------------------------------------------------------------------
def add_port(p: FlagParser) -> None:
    p.add_argument("container")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def cmd_port(paths: Paths, args: Namespace) -> int:
    """``80/tcp -> 0.0.0.0:8080`` per published port (only ``0.0.0.0:8080`` for one port)."""
    store = Store(paths)
    cfg = store.load(store.resolve(args.container))
    ports = (cfg.get("NetworkSettings") or {}).get("Ports") or {}
    if args.private_port:
        key = args.private_port if "/" in args.private_port else f"{args.private_port}/tcp"
        binds = ports.get(key)
        if not binds:
            raise NotFound(f"Error: No public port '{key}' published for {args.container}")
        for b in binds:
            print(f"{b['HostIp']}:{b['HostPort']}")
        return 0
    for key, binds in sorted(ports.items(), key=lambda kv: int(kv[0].split("/")[0])):
        for b in binds or []:
            print(f"{key} -> {b['HostIp']}:{b['HostPort']}")
    return 0
