"""net/dev of a container's init pid: fixture, the kernel's own format, the real file."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroupstats import ParseError
from cgroupstats.net import NetNamespaces, NetReader, parse_net_dev

PROC = Path(__file__).resolve().parents[1] / "fixtures" / "proc"
# The kernel's line format (net/core/net-procfs.c, dev_seq_printf_stats).
FMT = "%6s:%8d %7d %4d %4d %4d %5d %10d %9d %8d %7d %4d %4d %4d %5d %7d %10d"
HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs"
    " drop fifo colls carrier compressed\n"
)


def test_fixture_interfaces_skip_lo_and_survive_wide_counters() -> None:
    reader = NetReader(str(PROC), 4242)
    try:
        net = reader.read()
    finally:
        reader.close()
    assert set(net) == {"eth0", "vbox1"}
    eth0 = net["eth0"]
    assert (eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped) == (
        123456789012,
        90210,
        1,
        2,
    )
    assert (eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped) == (98765, 1234, 3, 4)


counter = st.integers(min_value=0, max_value=2**64 - 1)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True).filter(lambda n: n != "lo"),
        st.tuples(*[counter] * 16),
        max_size=5,
    )
)
def test_any_kernel_formatted_table_parses_back(table: dict[str, tuple[int, ...]]) -> None:
    text = HEADER + "".join(FMT % (name, *vals) + "\n" for name, vals in table.items())
    text += FMT % ("lo", *[1] * 16) + "\n"
    parsed = parse_net_dev(text.encode())
    assert set(parsed) == set(table)
    for name, v in table.items():
        p = parsed[name]
        assert (p.rx_bytes, p.rx_packets, p.rx_errors, p.rx_dropped) == v[0:4]
        assert (p.tx_bytes, p.tx_packets, p.tx_errors, p.tx_dropped) == v[8:12]


def test_missing_pid_has_no_network_and_no_fd() -> None:
    reader = NetReader(str(PROC), 999999)
    assert reader.read() == {}
    reader.close()
    assert NetReader(str(PROC), 0).read() == {}


def test_a_malformed_table_is_a_parse_error(tmp_path: Path) -> None:
    (tmp_path / "7" / "net").mkdir(parents=True)
    (tmp_path / "7" / "net" / "dev").write_text(HEADER + "  eth0: 1 2 x\n")
    reader = NetReader(str(tmp_path), 7)
    try:
        with pytest.raises(ParseError) as info:
            reader.read()
    finally:
        reader.close()
    assert info.value.file == "net/dev" and "eth0" in str(info.value)


def test_real_process_counters_and_fd_released() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        before = len(os.listdir("/proc/self/fd"))
        reader = NetReader("/proc", proc.pid)
        assert len(os.listdir("/proc/self/fd")) == before + 1
        host = {
            ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]
        }
        assert set(reader.read()) == host - {"lo"}
        reader.close()
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        proc.kill()
        proc.wait()


def test_containers_of_one_namespace_share_one_file_read_once_per_interval() -> None:
    """Host-network containers (or a pod's) share a held file; one in its own namespace
    gets its own; counters are the same as a private reader's; release closes."""
    host = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    own = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    namespaces = NetNamespaces("/proc")
    readers: list[NetReader] = []
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{own.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not make a namespace"
            time.sleep(0.01)
        before = len(os.listdir("/proc/self/fd"))
        readers = [NetReader("/proc", p.pid, namespaces) for p in (*host, own)]
        assert len(os.listdir("/proc/self/fd")) == before + 2  # host's and own's
        assert namespaces.open_files == 2 and all(r.private_fd == -1 for r in readers)
        private = NetReader("/proc", host[1].pid)
        try:
            assert set(readers[1].read()) == set(private.read())
        finally:
            private.close()
        namespaces.advance()
        first = [r.read() for r in readers]
        assert first[0] is first[1] is first[2]  # one reading for the namespace
        assert first[3] == {}  # a fresh namespace has only lo
        for r in readers[:2]:
            r.close()
        assert namespaces.open_files == 2  # the third host reader still uses it
        readers[2].close()
        readers[3].close()
        assert namespaces.open_files == 0 and len(os.listdir("/proc/self/fd")) == before
    finally:
        for r in readers:
            r.close()
        namespaces.close()
        for p in (*host, own):
            p.kill()
            p.wait()
