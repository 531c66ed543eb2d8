"""Attack: a container on user network ``a`` reached containers on network ``b`` (the
host routes between its bridges). Docker isolates networks from each other; so does the
nft ``box`` table now (a forward-hook drop between box bridges)."""

from __future__ import annotations

import pytest

from tests.conftest import Box, free_subnet


@pytest.fixture
def two_networks(box: Box) -> tuple[str, str]:
    made = []
    try:
        for name in ("isola", "isolb"):
            subnet = free_subnet(skip={box.subnet, *made})
            box.ok("network", "create", "--subnet", subnet, name)
            made.append(subnet)
        yield "isola", "isolb"
    finally:
        ids = box("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            box("rm", "-f", *ids, timeout=120)
        for name in ("isola", "isolb"):
            box("network", "rm", name)


def _http_server(box: Box, network: str) -> str:
    cid = box.ok("run", "-d", "--network", network, "busybox", "sh", "-c",
                 "echo reached > /i; httpd -f -p 8080 -h /").strip()
    return box.inspect(cid, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


def _fetch(box: Box, network: str, ip: str) -> str:
    # nc, not busybox's wget (it segfaults in this image)
    return box("run", "--rm", "--network", network, "busybox", "sh", "-c",
               f'printf "GET /i HTTP/1.0\\r\\n\\r\\n" | nc -w 2 {ip} 8080').stdout


def test_a_container_cannot_reach_another_network(box: Box, two_networks: tuple[str, str]) -> None:
    a, b = two_networks
    ip_b = _http_server(box, b)
    import time

    deadline = time.monotonic() + 15
    while "reached" not in _fetch(box, b, ip_b):  # the server answers its own network
        assert time.monotonic() < deadline, f"the server on {b} ({ip_b}) never answered"
        time.sleep(0.5)
    assert "reached" not in _fetch(box, a, ip_b)
