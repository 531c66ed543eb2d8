"""The nftables table ``ip box``: DNAT maps for published ports, masquerade for outbound
NAT and for ``127.0.0.1:PORT`` clients, and a forward filter.

Through the ``nft`` binary (``nft -f -`` to change, ``nft -j`` to read): it ships with the
nftables package every host running this already has; the libnftables Python binding is a
Debian-only package outside the virtualenv (python3-nftables), and a ctypes call saves no
time over the ~3 ms exec. Published ports are map elements, not rules: adding one is a
``create element`` (atomic, refuses a duplicate key), removing one needs no rule handle,
and each element carries its container id as a comment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from typing import NamedTuple

from runtime.errors import BoxError, Conflict

TABLE = "box"
LOCK = "/run/lock/box-nft.lock"
FORWARD_MARK = "box-enabled-ip-forward"  # the table's creator turned ip_forward on

_BASE = """\
table ip box {
  map tcp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  map tcp_any { type inet_service : ipv4_addr . inet_service; }
  map udp_addr { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  map udp_any { type inet_service : ipv4_addr . inet_service; }
  set subnets { type ipv4_addr; flags interval; }
  chain publish {
    dnat ip to ip daddr . tcp dport map @tcp_addr
    dnat ip to tcp dport map @tcp_any
    dnat ip to ip daddr . udp dport map @udp_addr
    dnat ip to udp dport map @udp_any
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump publish
  }
  chain output {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump publish
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 127.0.0.0/8 oifname "box*" masquerade
    ip saddr @subnets oifname != "box*" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "box*" accept
    oifname "box*" ct state established,related accept
    oifname "box*" ct status dnat accept
    oifname "box*" drop
%s  }
}
"""


_GUARD = """\
add chain ip box loopback_guard { type filter hook prerouting priority raw; policy accept; }
flush chain ip box loopback_guard
add rule ip box loopback_guard iifname "box*" ip daddr 127.0.0.0/8 drop
add chain ip box isolation { type filter hook forward priority -1; policy accept; }
flush chain ip box isolation
add set ip box isolated { type ipv4_addr; flags interval; }
add set ip box same_network { type ipv4_addr . ipv4_addr; flags interval; }
add rule ip box isolation iifname "box*" oifname "box*" ct status dnat accept
add rule ip box isolation iifname "box*" oifname "box*" ip saddr @isolated ip daddr @isolated \
ip saddr . ip daddr != @same_network drop
"""


class NftError(BoxError):
    """``nft`` refused a change; carries its first error line."""


class PortConflict(Conflict):
    """The host port is published by another container (any box root)."""


class Mapping(NamedTuple):
    """One published port: host side, container side, owner."""
    proto: str
    host_ip: str  # "" = every local address
    host_port: int
    ctr_ip: str
    ctr_port: int
    owner: str = ""


def _element(m: Mapping, with_data: bool) -> str:
    key = f"{m.host_ip} . {m.host_port}" if m.host_ip else str(m.host_port)
    if not with_data:
        return key
    return f'{key} comment "{m.owner}" : {m.ctr_ip} . {m.ctr_port}'


def _map(m: Mapping) -> str:
    return f"{m.proto}_{'addr' if m.host_ip else 'any'}"


class Nft:
    def __init__(self, binary: str = "nft", lock_path: str = LOCK) -> None:
        self.binary = binary
        self.lock_path = lock_path

    def run(self, script: str, what: str) -> None:
        import subprocess

        proc = subprocess.run([self.binary, "-f", "-"], input=script.encode(),
                              capture_output=True, check=False)
        if proc.returncode:
            first = next((ln for ln in proc.stderr.decode(errors="replace").splitlines()
                          if ln.startswith("Error") or "Error:" in ln), proc.stderr.decode()[:200])
            raise NftError(f"nftables: {what}: {first.strip()}")

    def list_json(self, *what: str) -> list[dict]:
        import subprocess

        proc = subprocess.run([self.binary, "-j", "list", *what], capture_output=True, check=False)
        if proc.returncode:
            return []
        return [item for item in json.loads(proc.stdout or b"{}").get("nftables", [])
                if "metainfo" not in item]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Host-wide: the table is shared by every box root on the machine."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def exists(self) -> bool:
        return bool(self.list_json("table", "ip", TABLE))

    def ensure_base(self, drop_other_forwarding: bool = False) -> None:
        """The table, created once and atomically (``create table`` fails if it exists,
        which aborts the whole batch, so rules are never added twice)."""
        extra = f'    drop comment "{FORWARD_MARK}"\n' if drop_other_forwarding else ""
        try:
            self.run(f"create table ip {TABLE}\n" + _BASE % extra, "create table ip box")
        except NftError as e:
            if "File exists" not in str(e) and "exists" not in str(e):
                raise

    def ensure_guard(self) -> None:
        """Loopback is the host's alone: a packet for 127.0.0.0/8 that arrives on a box
        bridge (``route_localnet=1`` there, for published ports on 127.0.0.1) is dropped
        before conntrack and NAT (CVE-2020-8558's pattern). Replies to a local client of
        a published port come back addressed to the gateway, so they pass. Flushed and
        rewritten in one batch: idempotent, and a table made by an older box gets it.

        Networks are isolated as Docker's are: a packet between two ``isolated`` subnets
        that are not one network's (``same_network``; both kept with ``subnets``) is
        dropped, unless it goes to a published port (DNAT). Not by interface: with
        br_netfilter, bridged packets show the bridge as both. Subnets added by an older
        box (only in ``subnets``) are left alone, so their own traffic keeps flowing."""
        self.run(f"add table ip {TABLE}\n" + _GUARD, "add chain ip box loopback_guard")

    def add_subnet(self, subnet: str) -> None:
        self.ensure_base()
        self.ensure_guard()
        self.run(f"add element ip {TABLE} subnets {{ {subnet} }}\n"
                 f"add element ip {TABLE} same_network {{ {subnet} . {subnet} }}\n"
                 f"add element ip {TABLE} isolated {{ {subnet} }}\n",
                 f"add subnet {subnet}")

    def delete_subnet(self, subnet: str) -> None:
        with contextlib.suppress(NftError):
            self.run(f"delete element ip {TABLE} subnets {{ {subnet} }}\n",
                     f"delete subnet {subnet}")
        with contextlib.suppress(NftError):
            self.run(f"delete element ip {TABLE} same_network {{ {subnet} . {subnet} }}\n",
                     f"delete subnet {subnet}")
        with contextlib.suppress(NftError):
            self.run(f"delete element ip {TABLE} isolated {{ {subnet} }}\n",
                     f"delete subnet {subnet}")

    # -- published ports --------------------------------------------------------
    def mappings(self) -> list[Mapping]:
        out = []
        for item in self.list_json("table", "ip", TABLE):
            m = item.get("map")
            if not m:
                continue
            proto, _, kind = m["name"].partition("_")
            for key, value in m.get("elem", []):
                comment, val = "", key
                if isinstance(key, dict) and "elem" in key:
                    comment, val = key["elem"].get("comment", ""), key["elem"]["val"]
                host_ip, host_port = val["concat"] if kind == "addr" else ("", val)
                ctr_ip, ctr_port = value["concat"]
                out.append(Mapping(proto, host_ip, int(host_port), ctr_ip, int(ctr_port), comment))
        return out

    def conflicts(self, wanted: list[Mapping], current: list[Mapping] | None = None
                  ) -> Mapping | None:
        """An existing mapping on the same protocol and port whose address overlaps."""
        for have in self.mappings() if current is None else current:
            for m in wanted:
                if (have.proto == m.proto and have.host_port == m.host_port
                        and (not have.host_ip or not m.host_ip or have.host_ip == m.host_ip)):
                    return have
        return None

    def publish(self, wanted: list[Mapping]) -> None:
        """All of ``wanted`` or none of them."""
        if not wanted:
            return
        script = "".join(f"create element ip {TABLE} {_map(m)} {{ {_element(m, True)} }}\n"
                         for m in wanted)
        with self.lock():
            for attempt in range(2):
                clash = self.conflicts(wanted)
                if clash:
                    raise PortConflict(f"Bind for {clash.host_ip or '0.0.0.0'}:{clash.host_port} "
                                       "failed: port is already allocated (container "
                                       f"{clash.owner[:12]})")
                try:
                    self.run(script, "publish ports")
                    return
                except NftError as e:
                    if attempt or "No such file or directory" not in str(e):
                        raise
                    self.ensure_base()

    def unpublish(self, mappings: list[Mapping]) -> None:
        """Remove what is there of ``mappings``; absent ones are fine."""
        if not mappings:
            return
        with self.lock():
            present = {(m.proto, m.host_ip, m.host_port) for m in self.mappings()}
            script = "".join(f"delete element ip {TABLE} {_map(m)} {{ {_element(m, False)} }}\n"
                             for m in mappings if (m.proto, m.host_ip, m.host_port) in present)
            if script:
                self.run(script, "unpublish ports")

    def subnets(self) -> set[str]:
        """The ``subnets`` set as ``a.b.c.0/24`` strings."""
        out = set()
        for item in self.list_json("table", "ip", TABLE):
            found = item.get("set") or {}
            if found.get("name") != "subnets":
                continue
            for elem in found.get("elem", []):
                if isinstance(elem, dict) and "prefix" in elem:  # subnets are added as CIDR
                    out.add(f"{elem['prefix']['addr']}/{elem['prefix']['len']}")
        return out

    def prune_orphans(self, carried: set[str]) -> list[str]:
        """Drop the subnets no box bridge carries any more, and the ports published to
        addresses outside every carried one: what a root thrown away without its teardown
        (a killed process) left. They
        would keep the table, shared by every root, alive for ever. A bridge gets its
        address before its subnet is added here, so a root being set up is never taken
        for an orphan. Returns the subnets dropped."""
        from runtime.network.addr import in_subnet, ip_to_int, parse_cidr

        nets = [parse_cidr(c, strict=False) for c in carried]
        self.unpublish([m for m in self.mappings()
                        if not any(in_subnet(ip_to_int(m.ctr_ip), *net) for net in nets)])
        orphans = sorted(self.subnets() - carried)
        for subnet in orphans:
            self.delete_subnet(subnet)
        return orphans

    def delete_table_if_unused(self) -> bool | None:
        """Drop the table when no map or set holds anything (no root uses it). None if
        it stays; else whether its creator had turned ip_forward on (to turn it off)."""
        with self.lock():
            items = self.list_json("table", "ip", TABLE)
            if not items or any((i.get("map") or i.get("set") or {}).get("elem") for i in items):
                return None
            marked = any((i.get("rule") or {}).get("comment") == FORWARD_MARK for i in items)
            self.run(f"delete table ip {TABLE}\n", "delete table ip box")
            return marked
