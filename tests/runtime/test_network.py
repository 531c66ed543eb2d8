"""Bridge and user networks on the real kernel: addresses, routes, name resolution between
containers, ``container:`` sharing, connect/disconnect, and IPAM under concurrency.
Traffic goes only to the tests' own container addresses."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Box, box_links, free_subnet, ipam_allocations


def _net(box: Box, name: str, subnet: str | None = None) -> str:
    args = ["network", "create", *(["--subnet", subnet] if subnet else []), name]
    return box.ok(*args).strip()


@pytest.fixture
def usernet(box: Box) -> str:
    subnet = free_subnet(skip={box.subnet})
    _net(box, "testnet", subnet)
    yield subnet
    ids = box("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box("rm", "-f", *ids, timeout=120)
    box.ok("network", "rm", "testnet")


def test_bridge_gives_eth0_an_address_a_route_and_etc_files(box: Box) -> None:
    out = box.ok("run", "--rm", "--network", "bridge", "-h", "web1", "--dns", "192.0.2.53",
                 "--dns-search", "example.test", "--add-host", "db.test:192.0.2.7", "busybox",
                 "sh", "-c", "ip -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; "
                             "hostname")
    prefix = box.subnet.rsplit(".", 1)[0]
    assert re.search(rf"inet {re.escape(prefix)}\.\d+/24", out), out
    assert f"default via {prefix}.1 dev eth0" in out
    assert re.search(rf"{re.escape(prefix)}\.\d+\tweb1", out)
    assert "192.0.2.7\tdb.test" in out
    assert "nameserver 192.0.2.53" in out and "search example.test" in out
    assert out.strip().endswith("web1")


def test_host_reaches_container_and_container_reaches_gateway(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "bridge", "busybox", "sleep", "60").strip()
    ip = box.inspect(cid, "{{.NetworkSettings.IPAddress}}")
    assert ip.startswith(box.subnet.rsplit(".", 1)[0])
    gw = box.inspect(cid, "{{.NetworkSettings.Gateway}}")
    assert box.ok("exec", cid, "ping", "-c1", "-W2", gw)
    # the host end is vbox..., on the session's bridge
    master = {p.name: (p / "master").resolve().name for p in Path("/sys/class/net").iterdir()
              if p.name.startswith("vbox") and (p / "master").exists()}
    assert box.bridge in master.values()
    box.ok("rm", "-f", cid)
    assert not [n for n, m in master.items()
                if m == box.bridge and (Path("/sys/class/net") / n).exists()]


def test_network_none_has_only_lo(box: Box) -> None:
    out = box.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]


def test_container_mode_shares_interfaces_and_hosts(box: Box) -> None:
    cid = box.ok("run", "-d", "--name", "netowner", "--network", "bridge", "busybox",
                 "sleep", "60").strip()
    owner = box.ok("exec", cid, "ip", "-4", "addr", "show", "eth0")
    shared = box.ok("run", "--rm", "--network", "container:netowner", "busybox",
                    "ip", "-4", "addr", "show", "eth0")
    assert re.search(r"inet (\S+)", owner).group(1) == re.search(r"inet (\S+)", shared).group(1)
    assert box.ok("run", "--rm", "--network", "container:netowner", "busybox",
                  "hostname").strip() == cid[:12]
    proc = box("run", "--rm", "--network", "container:netowner", "-p", "80", "busybox", "true")
    assert proc.returncode == 125 and "conflicting options" in proc.stderr


def test_user_network_resolves_names_and_aliases(box: Box, usernet: str) -> None:
    box.ok("run", "-d", "--name", "srv1", "--network", "testnet", "--network-alias", "api",
           "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    box.ok("run", "-d", "--name", "cli1", "--network", "testnet", "busybox", "sleep", "60")
    out = box.ok("exec", "cli1", "wget", "-q", "-O", "-", "http://srv1/hostname")
    assert out.strip() == box.inspect("srv1", "{{.Config.Hostname}}")
    assert box.ok("exec", "cli1", "wget", "-q", "-O", "-", "http://api/hostname").strip()
    assert "1 packets received" in box.ok("exec", "srv1", "ping", "-c1", "-W2", "cli1")
    # a container that stops disappears from its peers' /etc/hosts
    box.ok("stop", "-t", "1", "srv1")
    assert "srv1" not in box.ok("exec", "cli1", "cat", "/etc/hosts")
    view = json.loads(box.ok("network", "inspect", "testnet"))[0]
    assert [c["Name"] for c in view["Containers"].values()] == ["cli1"]


def test_fixed_ip_and_ip_outside_subnet(box: Box, usernet: str) -> None:
    want = usernet.rsplit(".", 1)[0] + ".77"
    out = box.ok("run", "--rm", "--network", "testnet", "--ip", want, "busybox",
                 "ip", "-4", "addr", "show", "eth0")
    assert f"inet {want}/24" in out
    proc = box("run", "--rm", "--network", "testnet", "--ip", "192.0.2.9", "busybox", "true")
    assert proc.returncode == 125 and "192.0.2.9" in proc.stderr
    assert not ipam_allocations(box.root)


def test_connect_and_disconnect_a_running_container(box: Box, usernet: str) -> None:
    cid = box.ok("run", "-d", "--network", "bridge", "busybox", "sleep", "60").strip()
    box.ok("run", "-d", "--name", "peer1", "--network", "testnet", "busybox", "sleep", "60")
    box.ok("network", "connect", "--alias", "second", "testnet", cid)
    out = box.ok("exec", cid, "ip", "-4", "addr")
    assert "eth1" in out and usernet.rsplit(".", 1)[0] in out
    assert "1 packets received" in box.ok("exec", "peer1", "ping", "-c1", "-W2", "second")
    box.ok("network", "disconnect", "testnet", cid)
    assert "eth1" not in box.ok("exec", cid, "ip", "-4", "addr")
    assert "second" not in box.ok("exec", "peer1", "cat", "/etc/hosts")


def test_link_on_the_default_bridge(box: Box) -> None:
    box.ok("run", "-d", "--name", "dbsrv", "--network", "bridge", "busybox", "sleep", "60")
    ip = box.inspect("dbsrv", "{{.NetworkSettings.IPAddress}}")
    hosts = box.ok("run", "--rm", "--network", "bridge", "--link", "dbsrv:db", "busybox",
                   "cat", "/etc/hosts")
    assert re.search(rf"^{re.escape(ip)}\tdb dbsrv ", hosts, re.M), hosts


def test_network_ls_inspect_rm_refuses_in_use_and_predefined(box: Box, usernet: str) -> None:
    names = box.ok("network", "ls", "--format", "{{.Name}}").split()
    assert {"bridge", "host", "none", "testnet"} <= set(names)
    view = json.loads(box.ok("network", "inspect", "testnet"))[0]
    assert view["IPAM"]["Config"][0]["Subnet"] == usernet
    assert view["Options"]["com.docker.network.bridge.name"].startswith("box-")
    box.ok("run", "-d", "--name", "user1", "--network", "testnet", "busybox", "sleep", "60")
    proc = box("network", "rm", "testnet")
    assert proc.returncode == 1 and "active endpoints" in proc.stderr
    assert box("network", "rm", "bridge").returncode == 1
    box.ok("rm", "-f", "user1")


@pytest.mark.parametrize("args, value, code", [
    (("--subnet", "10.0.0.0/33"), "10.0.0.0/33", 125),
    (("--subnet", "300.1.1.0/24"), "300.1.1.0/24", 125),
    (("--subnet", "10.99.0.5/24"), "10.99.0.5/24", 125),
    (("--subnet", "10.99.0.0/24", "--gateway", "10.98.0.1"), "10.98.0.1", 125),
    (("--subnet", "SESSION"), "SESSION", 1),  # overlaps the session's bridge: a daemon error
])
def test_network_create_bad_input(box: Box, args: tuple[str, ...], value: str, code: int) -> None:
    args = tuple(box.subnet if a == "SESSION" else a for a in args)
    value = box.subnet if value == "SESSION" else value
    box.ok("run", "--rm", "--network", "bridge", "busybox", "true")  # the session bridge exists
    before = box_links(box.root)  # other sessions' links come and go meanwhile
    proc = box("network", "create", *args, "badnet")
    assert proc.returncode == code and value in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert box_links(box.root) == before
    assert "badnet" not in box.ok("network", "ls")


def test_ten_concurrent_runs_get_distinct_addresses(box: Box) -> None:
    def run(_: int) -> str:
        return box.ok("run", "-d", "--network", "bridge", "busybox", "sleep", "30").strip()

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(run, range(10)))
    ips = [box.inspect(c, "{{.NetworkSettings.IPAddress}}") for c in ids]
    assert len(set(ips)) == 10 and all(ips)
    held = next(iter(ipam_allocations(box.root).values()))
    assert sorted(held) == sorted(ips)
    box.ok("rm", "-f", *ids, timeout=120)
    assert not ipam_allocations(box.root)


def test_teardown_drops_what_a_root_thrown_away_without_teardown_left(
        tmp_path: Path, make_box, busybox_tar: Path) -> None:
    """A root whose process was killed before its teardown (a killed test run) leaves its
    subnet, and ports published into it, in the host-wide nft table, which then outlives
    every root. The next teardown of any root drops what no box bridge carries any more."""
    import subprocess

    from runtime.network.nft import Mapping, Nft
    from runtime.network.teardown import teardown_root
    from runtime.paths import Paths

    gone = make_box(tmp_path / "gone" / "root", tmp_path / "gone" / "run")
    gone.ok("import", str(busybox_tar), "busybox")
    gone.ok("run", "--rm", "busybox", "true")  # its bridge and subnet now exist
    nft = Nft()
    assert gone.subnet in nft.subnets()
    stale_ip = gone.subnet.rsplit(".", 1)[0] + ".77"
    nft.publish([Mapping("tcp", "127.0.0.1", 1, stale_ip, 80, "ab" * 32)])
    subprocess.run(["ip", "link", "delete", gone.bridge], check=True)  # killed: no teardown

    other = make_box(tmp_path / "other" / "root", tmp_path / "other" / "run")
    other.ok("import", str(busybox_tar), "busybox")
    other.ok("run", "--rm", "busybox", "true")
    teardown_root(Paths(str(other.root), str(other.exec_root)))
    assert gone.subnet not in nft.subnets()
    assert not [m for m in nft.mappings() if m.ctr_ip == stale_ip]
