"""The few rtnetlink requests a container start needs, packed with ``struct``.

Why not pyroute2 here: importing it costs 120-145 ms on the development machine (its
package ``__init__`` pulls asyncio, ssl, multiprocessing, the IPDB/NDB layers), three times
the issue's 40 ms budget for a bridge start. Everything else (bridges, network admin,
inspection, the tests' independent checks) uses pyroute2's ``IPRoute``/``NetNS``; this
module only does: look a link up, make a veth pair whose peer lands in another netns,
set master/up/MAC, add an IPv4 address and a default route, delete a link.

A socket answers for the network namespace it was opened in, which is what lets the
monitor's first child hold one socket in the host namespace and one in the container's.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 0x1
_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")


class NetlinkError(OSError):
    """A negative answer from the kernel: errno plus which request it was."""


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def mac_for(ip: str) -> bytes:
    """Docker's MAC for an address: 02:42 then the four address bytes, so a reused address
    keeps its MAC and peers' ARP caches stay right."""
    return b"\x02\x42" + socket.inet_aton(ip)


class Rtnl:
    """One NETLINK_ROUTE socket, synchronous requests with acks."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  0)  # NETLINK_ROUTE
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, kind: int, flags: int, body: bytes, what: str) -> list[bytes]:
        self.seq += 1
        msg = _HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK,
                        self.seq, 0) + body
        self.sock.send(msg)
        replies: list[bytes] = []
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _HDR.size <= len(data):
                length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, off)
                payload = data[off + _HDR.size:off + length]
                off += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise NetlinkError(code, f"{what}: {os.strerror(code)}")
                    return replies
                replies.append(payload)

    # -- links ---------------------------------------------------------------
    def link_index(self, name: str) -> int | None:
        """The index of ``name`` in this socket's namespace, or None."""
        try:
            replies = self._request(
                RTM_GETLINK,
                0,
                _ifinfo() + _attr(IFLA_IFNAME, name.encode() + b"\0"),
                f"get link {name}",
            )
        except NetlinkError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return _IFINFO.unpack_from(replies[0])[2] if replies else None

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mac: bytes | None = None,
                 mtu: int = 0) -> None:
        """``name`` here, ``peer`` created directly in the namespace of ``peer_netns_fd``."""
        peer_info = (_ifinfo() + _attr(IFLA_IFNAME, peer.encode() + b"\0")
                     + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        if mtu:
            peer_info += _attr(IFLA_MTU, struct.pack("=I", mtu))
        linkinfo = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(
            IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        body = (
            _ifinfo() + _attr(IFLA_IFNAME, name.encode() + b"\0") + _attr(IFLA_LINKINFO, linkinfo)
        )
        if mac:
            body += _attr(IFLA_ADDRESS, mac)
        if mtu:
            body += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {name}/{peer}")

    def set_link(self, index: int, up: bool = True, master: int = 0) -> None:
        body = _ifinfo(index, IFF_UP if up else 0, IFF_UP)
        if master:
            body += _attr(IFLA_MASTER, struct.pack("=I", master))
        self._request(RTM_NEWLINK, 0, body, f"set link {index}")

    def delete_link(self, name: str) -> bool:
        """True if it existed; deleting one end of a veth pair deletes both."""
        index = self.link_index(name)
        if index is None:
            return False
        try:
            self._request(RTM_DELLINK, 0, _ifinfo(index), f"delete link {name}")
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    # -- addresses and routes ------------------------------------------------
    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        raw = socket.inet_aton(ip)
        bcast = struct.unpack("!I", raw)[0] | ((1 << (32 - prefixlen)) - 1 if prefixlen < 32 else 0)
        body = (struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, 0, index)
                + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)
                + _attr(IFA_BROADCAST, struct.pack("!I", bcast)))
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {ip}/{prefixlen}")

    def add_default_route(self, gateway: str, index: int) -> None:
        body = (
            struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
            + _attr(RTA_GATEWAY, socket.inet_aton(gateway))
            + _attr(RTA_OIF, struct.pack("=I", index))
        )
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"add default route via "
                                                                     f"{gateway}")
