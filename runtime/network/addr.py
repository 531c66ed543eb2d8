"""IPv4 arithmetic on plain ints: ``ipaddress`` costs ~3 ms of import on the start path."""

from __future__ import annotations

import socket
import struct

from runtime.errors import InvalidArgument


def ip_to_int(ip: str) -> int:
    try:
        if ip.count(".") != 3:
            raise OSError
        return struct.unpack("!I", socket.inet_aton(ip))[0]
    except OSError:
        raise InvalidArgument(f"invalid IPv4 address: {ip}") from None


def int_to_ip(value: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", value))


def parse_cidr(text: str, strict: bool = True) -> tuple[int, int]:
    """``172.30.0.0/16`` -> (network int, prefix length). ``strict``: host bits must be 0."""
    ip, sep, plen = text.partition("/")
    if not sep or not plen.isdigit() or not 8 <= int(plen) <= 30:
        raise InvalidArgument(f"invalid CIDR address: {text} (want a.b.c.d/8..30)")
    try:
        base = ip_to_int(ip)
    except InvalidArgument:
        raise InvalidArgument(f"invalid CIDR address: {text}") from None
    prefixlen = int(plen)
    mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
    if strict and base & ~mask & 0xFFFFFFFF:
        raise InvalidArgument(f"invalid CIDR address: {text} (host bits set; network is "
                              f"{int_to_ip(base & mask)}/{prefixlen})")
    return base & mask, prefixlen


def in_subnet(ip: int, net: int, prefixlen: int) -> bool:
    mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
    return ip & mask == net


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    plen = min(a[1], b[1])
    return (
        in_subnet(a[0], b[0] & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF), plen) if plen else True
    )


def host_range(net: int, prefixlen: int) -> tuple[int, int]:
    """First and last usable host address (network and broadcast excluded)."""
    return net + 1, net + (1 << (32 - prefixlen)) - 2
