"""Published ports through nftables DNAT, reached from the host on 127.0.0.1 only."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from runtime.network.ports import format_ports, parse_publish
from tests.conftest import Box, box_links, nft_box_elements

# The busybox image has no UDP server: the host's python, run in the container's network
# namespace through a read-only bind of / and chroot.
UDP_ECHO = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0',5353))\nwhile True:\n d,a=s.recvfrom(2048)\n s.sendto(d[::-1],a)\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float = 5.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def _httpd(box: Box, *publish: str, name: str = "web") -> str:
    return box.ok("run", "-d", "--name", name, "--network", "bridge", *publish, "busybox",
                  "sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 80 -h /tmp").strip()


def test_httpd_answers_on_127_0_0_1_published_port(box: Box) -> None:
    port = free_port()
    cid = _httpd(box, "-p", f"127.0.0.1:{port}:80")
    assert _get(f"http://127.0.0.1:{port}/").strip() == cid[:12]
    assert box.ok("port", "web").strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert box.ok("port", "web", "80").strip() == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}->80/tcp" in box.ok("ps")
    ports = box.inspect("web", "{{json .NetworkSettings.Ports}}")
    assert f'"HostPort":"{port}"' in ports
    # stop: the DNAT entry goes, the port is free for the host again
    box.ok("stop", "-t", "1", "web")
    assert not [e for e in nft_box_elements() if cid in e]
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert box.ok("ps", "-a", "--format", "{{.Ports}}").strip() == "80/tcp"
    # start again: published again
    box.ok("start", "web")
    assert _get(f"http://127.0.0.1:{port}/").strip() == cid[:12]


def test_free_port_for_ip_double_colon_and_publish_all(box: Box, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    box.ok("run", "-d", "--name", "web", "--network", "bridge", "-p", "127.0.0.1::80",
           "--expose", "81", "-P", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    lines = dict(ln.split(" -> ") for ln in box.ok("port", "web").splitlines())
    assert set(lines) == {"80/tcp", "81/tcp"}
    host80 = int(lines["80/tcp"].rsplit(":", 1)[1])
    assert lines["80/tcp"].startswith("127.0.0.1:") and lines["81/tcp"].startswith("0.0.0.0:")
    assert 49000 <= int(lines["81/tcp"].rsplit(":", 1)[1]) <= 49900
    assert "root:" in _get(f"http://127.0.0.1:{host80}/passwd")


def test_udp_echo_through_a_published_udp_port(box: Box) -> None:
    port = free_port()
    box.ok("run", "-d", "--name", "udp", "--network", "bridge", "-p", f"127.0.0.1:{port}:5353/udp",
           "-v", "/:/host:ro", "busybox", "chroot", "/host", "python3", "-c", UDP_ECHO)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(50):  # the server needs a moment to bind
            s.sendto(b"hello udp", ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(100)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no UDP echo")
    assert data == b"pdu olleh"
    assert box.ok("port", "udp").strip() == f"5353/udp -> 127.0.0.1:{port}"


def _snapshot(box: Box) -> tuple:
    """This root's veths, nft elements (those naming its subnet: other sessions share the
    table) and containers."""
    links = {n for n in box_links(box.root) if n.startswith("vbox")}
    net = box.subnet.rsplit(".", 1)[0] + "."
    return links, {e for e in nft_box_elements() if net in e}, box.ok("ps", "-aq")


def test_port_in_use_by_a_host_listener_or_a_container_is_refused_up_front(box: Box) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        before = _snapshot(box)
        proc = box(
            "run", "-d", "--network", "bridge", "-p", f"127.0.0.1:{port}:80", "busybox", "true"
        )
        assert proc.returncode == 125 and str(port) in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1
        assert _snapshot(box) == before
    port = free_port()
    _httpd(box, "-p", f"{port}:80")  # every address: clashes with 127.0.0.1:port too
    before = _snapshot(box)
    for spec in (f"{port}:80", f"127.0.0.1:{port}:80"):
        proc = box("run", "-d", "--network", "bridge", "-p", spec, "busybox", "true")
        assert proc.returncode == 125 and "already allocated" in proc.stderr, proc.stderr
    proc = box("run", "-d", "--network", "bridge", "-p", f"{port}:81/udp", "busybox", "true")
    assert proc.returncode == 0, proc.stderr  # another protocol is another port
    box.ok("rm", "-f", proc.stdout.strip())
    assert _snapshot(box) == before


@pytest.mark.parametrize("spec", ["80:", "abc:80", "127.0.0.1:70000:80", "1.2.3:80:80",
                                  "[::1]:80:80", "80/sctp", "8000-8002:80-81"])
def test_malformed_publish_is_125_and_leaves_nothing(box: Box, spec: str) -> None:
    before = _snapshot(box)
    proc = box("run", "--network", "bridge", "-p", spec, "busybox", "true")
    assert proc.returncode == 125, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert _snapshot(box) == before


def test_parse_publish_forms() -> None:
    assert parse_publish(["8080:80", "127.0.0.1:53:53/udp", "127.0.0.1::443", "90"]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
        "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "90/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert parse_publish(["8000-8001:80-81"])["81/tcp"] == [{"HostIp": "", "HostPort": "8001"}]
    assert format_ports({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
                        {"80/tcp": {}, "443/tcp": {}}) == "0.0.0.0:8080->80/tcp, 443/tcp"
