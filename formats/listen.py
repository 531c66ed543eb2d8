"""``--listen HOST:PORT`` as every boxwatch server reads it (collector, shipper, web), so
one flag means one address everywhere: an empty host is loopback, never every address.
Exposing a server is asked for by name (``0.0.0.0:9180``, ``[::]:9180``), as the compose
files and DaemonSets do. Standard library only."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"


class ListenError(ValueError):
    """--listen was not HOST:PORT."""

    def __init__(self, value: str) -> None:
        super().__init__(f"--listen wants HOST:PORT, got {value!r}")
        self.value = value


def parse_listen(value: str) -> tuple[str, int]:
    """"127.0.0.1:9180", ":9180" (loopback), "[::1]:9180", "0.0.0.0:9180" -> (host, port);
    ListenError naming the value for anything else."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ListenError(value)
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ListenError(value)  # an IPv6 address needs its brackets
    return host[1:-1] if host.startswith("[") else (host or LOOPBACK), int(port)
