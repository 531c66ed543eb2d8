"""Address allocation per network: one JSON file and one flock under
``<root>/network/ipam/``, so concurrent ``box run``s never hand out the same address.

Allocation is sequential after the last address given out (wrapping), as docker's default
IPAM does, so a just-released address is not reused at once (peers' ARP caches age out).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator

from formats.atomicfile import write_atomic
from runtime.errors import Conflict, InvalidArgument
from runtime.network.addr import host_range, in_subnet, int_to_ip, ip_to_int, parse_cidr
from runtime.state import read_state_file

_REQUIRED = {"Allocated": dict}  # {ip: owner}; what every reader of a pool file relies on


class AddressesExhausted(Conflict):
    """Every address of the subnet is in use."""


class Ipam:
    """The pool of one network; every method takes the pool's lock."""

    def __init__(self, root: str, network_id: str, subnet: str, gateway: str) -> None:
        self.dir = os.path.join(root, "network", "ipam")
        self.path = os.path.join(self.dir, f"{network_id}.json")
        self.lock_path = os.path.join(self.dir, f"{network_id}.lock")
        self.subnet = subnet
        self.gateway = gateway
        self.net, self.prefixlen = parse_cidr(subnet)

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict]:
        """The pool file ({"Allocated": {ip: owner}, "Last": ip, ...}) under the lock;
        written back (atomically) when the block ends without an error."""
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # a damaged pool is refused (DamagedState), never overwritten
                data = read_state_file(self.path, _REQUIRED)
            except FileNotFoundError:
                data = {"Subnet": self.subnet, "Gateway": self.gateway, "Last": "",
                        "Allocated": {}}
            yield data
            write_atomic(self.path, json.dumps(data).encode(), 0o666)
        finally:
            os.close(fd)

    def allocate(self, owner: str, want: str | None = None) -> str:
        """An address for ``owner`` (``want`` if given and free)."""
        first, last = host_range(self.net, self.prefixlen)
        gateway = ip_to_int(self.gateway) if self.gateway else -1
        with self.locked() as data:
            table = data["Allocated"]
            if want:
                value = ip_to_int(want)
                if not in_subnet(value, self.net, self.prefixlen) or not first <= value <= last:
                    raise InvalidArgument(f"invalid address {want}: it does not belong to the "
                                          f"network's subnet {self.subnet}")
                if value == gateway or table.get(want, owner) != owner:
                    raise Conflict(f"Address already in use: {want}")
                table[want] = owner
                return want
            start = ip_to_int(data["Last"]) + 1 if data.get("Last") else first
            size = last - first + 1
            for i in range(size):
                value = first + (start - first + i) % size
                ip = int_to_ip(value)
                if value != gateway and ip not in table:
                    table[ip] = owner
                    data["Last"] = ip
                    return ip
        raise AddressesExhausted(f"no available IPv4 addresses on network subnet {self.subnet}")

    def release(self, owner: str) -> list[str]:
        """Every address held by ``owner``; returns them."""
        with self.locked() as data:
            table = data["Allocated"]
            gone = [ip for ip, who in table.items() if who == owner]
            for ip in gone:
                del table[ip]
        return gone

    def allocated(self) -> dict[str, str]:
        try:
            return dict(read_state_file(self.path, _REQUIRED)["Allocated"])
        except FileNotFoundError:
            return {}

    def drop(self) -> None:
        """The network is gone: its pool too."""
        for path in (self.path, self.lock_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
