"""Network failures leave nothing: no veth, no nftables element, no address held, no
container; at create (bad flags) and at start (a port or an address taken meanwhile)."""

from __future__ import annotations

import os
import socket

import pytest

from tests.conftest import Box, box_links, free_subnet, ipam_allocations, nft_box_elements


def _state(box: Box) -> tuple:
    links = sorted(n for n in box_links(box.root) if n.startswith("vbox"))
    return links, nft_box_elements(), ipam_allocations(box.root)


@pytest.mark.parametrize("args, value", [
    (("--network", "nosuchnet"), "nosuchnet"),
    (("--network", "container:nosuchctr"), "nosuchctr"),
    (("--network", "bridge", "--ip", "172.31.9.9"), "--ip"),
    (("--network", "bridge", "--network-alias", "x"), "alias"),
    (("--network", "host", "-p", "80:80"), "port publishing"),
    (("--network", "bridge", "--link", "nosuchctr:db"), "nosuchctr"),
    (("--network", "bridge", "--add-host", "name-without-ip"), "name-without-ip"),
    (("--network", "bridge", "--dns", "not-an-ip"), "not-an-ip"),
])
def test_bad_network_flags_are_125_one_line_nothing_left(box: Box, args: tuple[str, ...],
                                                         value: str) -> None:
    before = _state(box)
    for verb in ("run", "create"):
        proc = box(verb, *args, "busybox", "true")
        assert proc.returncode == 125, proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and value in proc.stderr, proc.stderr
    assert box.ok("ps", "-aq") == ""
    assert _state(box) == before


def test_port_taken_between_create_and_start_leaves_nothing(box: Box) -> None:
    box.ok("run", "--rm", "--network", "bridge", "busybox", "true")  # the bridge exists
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cid = box.ok("create", "--network", "bridge", "-p", f"127.0.0.1:{port}:80", "busybox",
                 "sleep", "30").strip()
    before = _state(box)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        proc = box("start", cid)
        assert proc.returncode == 1 and str(port) in proc.stderr, proc.stderr
    assert _state(box) == before
    assert box.inspect(cid, "{{.State.Status}}") == "created"
    box.ok("start", cid)  # the port is free again: it starts now
    assert box.ok("port", cid).strip() == f"80/tcp -> 127.0.0.1:{port}"


def test_fixed_address_in_use_fails_at_start_and_leaves_nothing(box: Box) -> None:
    subnet = free_subnet(skip={box.subnet})
    box.ok("network", "create", "--subnet", subnet, "fixnet")
    try:
        ip = subnet.rsplit(".", 1)[0] + ".50"
        first = box.ok(
            "create", "--network", "fixnet", "--ip", ip, "busybox", "sleep", "30"
        ).strip()
        second = box.ok(
            "create", "--network", "fixnet", "--ip", ip, "busybox", "sleep", "30"
        ).strip()
        box.ok("start", first)
        before = _state(box)
        proc = box("start", second)
        assert proc.returncode == 1 and ip in proc.stderr, proc.stderr
        assert _state(box) == before
        proc = box("run", "--network", "fixnet", "--ip", ip, "busybox", "true")
        assert proc.returncode == 125 and "in use" in proc.stderr
    finally:
        ids = box("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            box("rm", "-f", *ids)
        box.ok("network", "rm", "fixnet")


def test_subnet_overlap_check_sees_the_session_bridge(box: Box) -> None:
    from runtime.network.bridge import Bridges

    box.ok("run", "--rm", "--network", "bridge", "busybox", "true")
    assert Bridges().overlapping_route(box.subnet) is not None
    assert Bridges().overlapping_route(box.subnet, ignore_link=box.bridge) is None


def test_default_subnet_clash_says_how_to_fix_and_the_fix_works(
        make_box, tmp_path, busybox_tar) -> None:
    """A default bridge whose subnet a host route covers: a clear 125, and setting
    BOX_DEFAULT_SUBNET afterwards is enough (the saved record follows it until the
    bridge exists)."""
    from pyroute2 import IPRoute

    other = make_box(tmp_path / "root", tmp_path / "run")
    other.ok("import", str(busybox_tar), "busybox")
    taken = free_subnet(skip={other.subnet})
    blocker = f"boxclash{os.getpid() % 10000}"
    with IPRoute() as ipr:
        ipr.link("add", ifname=blocker, kind="bridge")
        idx = ipr.link_lookup(ifname=blocker)[0]
        try:
            ipr.addr("add", index=idx, address=taken.replace(".0/24", ".1"), prefixlen=24)
            ipr.link("set", index=idx, state="up")
            clashing = Box(other.root, other.exec_root, bridge=other.bridge, subnet=taken)
            proc = clashing("run", "--rm", "busybox", "true")
            assert proc.returncode == 125
            assert taken in proc.stderr and "BOX_DEFAULT_SUBNET" in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
            assert other.bridge not in box_links(other.root)
            # the fix the message names
            assert other("run", "--rm", "busybox", "true").returncode == 0
        finally:
            ipr.link("del", index=idx)
