"""Bridges on the host with pyroute2 (``IPRoute``): create with the gateway address, find
which box root owns one, check a subnet against the host's routes, delete.

Only the first container on a network (or ``box network create``) comes here: pyroute2's
import is ~130 ms. A bridge records its owner (the state root) in its ``ifalias``, so two
roots never share a bridge and with it each other's addresses.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket

from runtime.errors import BoxError, Conflict
from runtime.network.addr import int_to_ip, overlaps, parse_cidr

SYS_CLASS_NET = "/sys/class/net"


class BridgeError(BoxError):
    """The kernel refused a bridge operation; carries the bridge's name."""


def owner(name: str, sys_class_net: str = SYS_CLASS_NET) -> str | None:
    """The root recorded in the bridge's ifalias; None if no such link ("" if no alias)."""
    try:
        with open(os.path.join(sys_class_net, name, "ifalias")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def wait_owner(name: str, sys_class_net: str = SYS_CLASS_NET, timeout: float = 2.0) -> str | None:
    """``owner``, waiting out the moment between a bridge's creation and its ifalias."""
    import time

    deadline = time.monotonic() + timeout
    found = owner(name, sys_class_net)
    while found == "" and time.monotonic() < deadline:
        time.sleep(0.01)
        found = owner(name, sys_class_net)
    return found


class Bridges:
    def __init__(self, proc_sys: str = "/proc/sys") -> None:
        self.proc_sys = proc_sys

    def _sysctl(self, key: str, value: str) -> str:
        """Write ``value``; return what was there before."""
        path = os.path.join(self.proc_sys, *key.split("."))
        with open(path) as f:
            old = f.read().strip()
        if old != value:
            with open(path, "w") as f:
                f.write(value)
        return old

    def carried_subnets(self) -> set[str]:
        """The subnets on ``box*`` links (``a.b.c.0/24``), i.e. those some root still uses."""
        from pyroute2 import IPRoute

        out = set()
        with IPRoute() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") or ""
                     for link in ipr.get_links()}
            for msg in ipr.get_addr(family=socket.AF_INET):
                if names.get(msg["index"], "").startswith("box"):
                    net, plen = parse_cidr(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}",
                                           strict=False)
                    out.add(f"{int_to_ip(net)}/{plen}")
        return out

    def overlapping_route(self, subnet: str, ignore_link: str = "") -> str | None:
        """A host route or address that overlaps ``subnet`` (other than on ``ignore_link``)."""
        from pyroute2 import IPRoute

        want = parse_cidr(subnet)
        with IPRoute() as ipr:
            ignore = set(ipr.link_lookup(ifname=ignore_link)) if ignore_link else set()
            for route in ipr.get_routes(family=socket.AF_INET):
                plen = route["dst_len"]
                dst = route.get_attr("RTA_DST")
                if not plen or not dst or route.get_attr("RTA_OIF") in ignore:
                    continue
                if route.get_attr("RTA_TABLE") not in (254, None):
                    continue
                if overlaps(want, parse_cidr(f"{dst}/{max(plen, 8)}", strict=False)):
                    return f"{dst}/{plen}"
        return None

    def ensure(self, name: str, subnet: str, gateway: str, root: str) -> None:
        """The bridge ``name`` up with ``gateway``, owned by ``root``; created if missing."""
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        found = wait_owner(name)
        if found not in (None, root):
            raise Conflict(f"bridge {name} belongs to the box root {found or '(unknown)'}; "
                           "set BOX_BRIDGE and BOX_DEFAULT_SUBNET for this root")
        net, plen = parse_cidr(subnet)
        if found is None:
            clash = self.overlapping_route(subnet, ignore_link=name)
            if clash:
                raise Conflict(f"subnet {subnet} of bridge {name} overlaps the host route {clash}; "
                               "choose another with BOX_DEFAULT_SUBNET (and BOX_BRIDGE), "
                               "or run with --network none")
        with IPRoute() as ipr:
            try:
                ipr.link("add", ifname=name, kind="bridge")
                created = True
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise BridgeError(
                        f"cannot create bridge {name}: {os.strerror(e.code)}"
                    ) from None
                created = False
            index = ipr.link_lookup(ifname=name)[0]
            if created:  # the kernel ignores IFLA_IFALIAS on a new link: a second request
                ipr.link("set", index=index, ifalias=root)
            try:
                ipr.addr("add", index=index, address=gateway, prefixlen=plen,
                         broadcast=int_to_ip(net + (1 << (32 - plen)) - 1))
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise BridgeError(f"cannot address bridge {name} {gateway}/{plen}: "
                                      f"{os.strerror(e.code)}") from None
            ipr.link("set", index=index, state="up")
        # 127.0.0.1:PORT DNATed to a container leaves through the bridge with a loopback
        # source: allowed on this interface only (docker does the same per bridge).
        self._sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")

    def enable_forwarding(self) -> bool:
        """Outbound NAT needs ip_forward; True if this call turned it on (the nft
        ``forward`` chain then drops whatever is not to or from a box bridge)."""
        return self._sysctl("net.ipv4.ip_forward", "1") == "0"

    def restore_forwarding(self) -> None:
        self._sysctl("net.ipv4.ip_forward", "0")

    def delete(self, name: str, root: str) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        found = owner(name)
        if found is None:
            return
        if found != root:
            raise Conflict(f"bridge {name} belongs to the box root {found}")
        with IPRoute() as ipr, contextlib.suppress(NetlinkError):
            ipr.link("del", ifname=name)
