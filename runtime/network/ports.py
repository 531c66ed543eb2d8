"""``-p``/``-P``/``--expose``: docker's syntax into ``PortBindings``/``ExposedPorts``, and at
start the concrete host ports (free ones picked from ``BOX_PORT_RANGE``, 49000-49900).

A host port is free when no container of any box root publishes it (the nftables maps)
and no host socket holds it (a probe ``bind``). The monitor then holds a bound, unlistened
socket on each published port while the container runs, as docker-proxy holds its port,
so a host process cannot take it later.
"""

from __future__ import annotations

import errno
import os
import socket

from runtime.errors import Conflict, InvalidArgument

DEFAULT_RANGE = (49000, 49900)


class PortInUse(Conflict):
    """A host process (or another container) holds the port."""


def _port(text: str, spec: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidArgument(f"invalid port specification: \"{spec}\"") from None
    if not (1 <= a <= 65535 and 1 <= b <= 65535 and a <= b):
        raise InvalidArgument(f"invalid port specification: \"{spec}\" (ports are 1-65535)")
    return a, b


def _proto(text: str, spec: str) -> tuple[str, str]:
    port, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid proto \"{proto}\" in \"{spec}\" (tcp or udp)")
    return port, proto


def parse_publish(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    """``[ip:][hostPort]:containerPort[/proto]`` (ranges of equal length allowed) ->
    docker's ``PortBindings`` ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})."""
    from runtime.network.addr import ip_to_int

    out: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        if spec.startswith("[") or spec.count(":") > 2:
            raise InvalidArgument(f"invalid port specification: \"{spec}\" (IPv4 only)")
        rest, proto = _proto(spec, spec)
        parts = rest.split(":")
        host_ip, host_port, ctr = "", "", parts[-1]
        if len(parts) == 3:
            host_ip, host_port = parts[0], parts[1]
        elif len(parts) == 2:
            host_port = parts[0]
        if host_ip:
            ip_to_int(host_ip)  # raises with the value
            if host_ip == "0.0.0.0":
                host_ip = ""
        c_lo, c_hi = _port(ctr, spec)
        if host_port:
            h_lo, h_hi = _port(host_port, spec)
            if h_hi - h_lo != c_hi - c_lo and h_lo != h_hi:
                raise InvalidArgument(f"invalid ranges specified for container and host ports: "
                                      f"\"{spec}\"")
        for i, cport in enumerate(range(c_lo, c_hi + 1)):
            hp = ""
            if host_port:
                hp = str(h_lo + i) if h_hi != h_lo else str(h_lo)
            out.setdefault(f"{cport}/{proto}", []).append({"HostIp": host_ip, "HostPort": hp})
    return out


def parse_expose(specs: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for spec in specs:
        port, proto = _proto(spec, spec)
        lo, hi = _port(port, spec)
        for p in range(lo, hi + 1):
            out[f"{p}/{proto}"] = {}
    return out


def port_range(env: dict[str, str] | None = None) -> tuple[int, int]:
    text = (env if env is not None else os.environ).get("BOX_PORT_RANGE", "")
    if not text:
        return DEFAULT_RANGE
    lo, sep, hi = text.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 65535):
        raise InvalidArgument(f"invalid BOX_PORT_RANGE: {text} (want LOW-HIGH)")
    return int(lo), int(hi)


def hold(proto: str, host_ip: str, port: int) -> socket.socket:
    """Hold the host port for a running container: TCP listens (never accepting: DNAT
    takes every packet first) so no host server can bind it later, UDP stays bound.
    PortInUse if a host socket has it."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        if proto == "tcp":  # a connection in TIME_WAIT must not block the port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip or "0.0.0.0", port))
        if proto == "tcp":
            s.listen(1)
    except OSError as e:
        s.close()
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already "
                            "in use on the host") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise InvalidArgument(f"cannot publish on {host_ip}:{port}: not an address of "
                                  "this host") from None
        raise
    return s


def probe(proto: str, host_ip: str, port: int) -> None:
    """Raise PortInUse if a host socket (listening, or bound as by a monitor) has it;
    SO_REUSEADDR so a connection in TIME_WAIT does not count."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is "
                                "already in use on the host") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {host_ip}:{port}: not an address "
                                      "of this host") from None
            raise


def wanted(host: dict, exposed: dict) -> list[tuple[str, str, int, int]]:
    """(proto, host_ip, host_port or 0 for "pick one", container port) for a container."""
    out = []
    bindings = dict(host.get("PortBindings") or {})
    if host.get("PublishAllPorts"):
        for key in exposed or {}:
            bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    for key, binds in bindings.items():
        port, _, proto = key.partition("/")
        for b in binds or [{"HostIp": "", "HostPort": ""}]:
            out.append((proto or "tcp", b.get("HostIp") or "", int(b.get("HostPort") or 0),
                        int(port)))
    return out


def format_ports(ports: dict, exposed: dict | None = None) -> str:
    """``box ps``'s PORTS: ``0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp, 443/tcp``."""
    items = []
    for key, binds in sorted(
        (ports or {}).items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0])
    ):
        if not binds:
            items.append(key)
            continue
        for b in binds:
            items.append(f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{key}")
    for key in sorted(exposed or {}):
        if key not in (ports or {}):
            items.append(key)
    return ", ".join(items)
