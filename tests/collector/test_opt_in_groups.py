"""The readers behind cAdvisor's opt-in groups and the new default fields: on real groups
of this host (v1 controllers, and the unified mount's group, which has cgroup.threads,
cpu.stat and PSI only), on the committed fixture trees, and, for v2-only files this
kernel does not have, on generated contents (hypothesis)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cgroupstats import open_reader
from cgroupstats.extras import ExtrasReader
from cgroupstats.model import ContainerRef, Extras, ProcessStats, Sample, TaskStats
from cgroupstats.parse import Held
from cgroupstats.procs import TCP_STATES, count_tcp, count_udp
from cgroupstats.tasks import Netlink, Tasks
from cgroupstats.v1.hugetlb import Hugetlb as V1Hugetlb
from cgroupstats.v1.numa import parse_numa as numa_v1
from cgroupstats.v2.cpu import Cpu as V2Cpu
from cgroupstats.v2.hugetlb import Hugetlb as V2Hugetlb
from cgroupstats.v2.io import parse_io_stat
from cgroupstats.v2.memory import STAT_KEYS
from cgroupstats.v2.memory import Memory as V2Memory
from cgroupstats.v2.numa import PAGE
from cgroupstats.v2.numa import parse_numa as numa_v2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SLEEP = [sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"]
U64 = st.integers(min_value=0, max_value=2**63)


def with_extras(s: Sample) -> Sample:
    """A sample with every opt-in group filled (for exposition tests)."""
    ex = Extras(
        tasks=TaskStats(3, 1, 0, 1, 0, 1500.0, 250.0),
        processes=ProcessStats(2, 17, 3, 1024),
        hugetlb={"2MB": (2 << 20, 4 << 20, 1), "1GB": (0, 0, 0)},
        numa={("file", "hierarchy", "0"): 12, ("anon", "container", "0"): 3},
        tcp={"established": 2, "listen": 1}, tcp6={"listen": 1},
        udp={"listen": 1, "dropped": 0, "rxqueued": 0, "txqueued": 0}, udp6={},
        memory_migrate=0,
    )
    return dataclasses.replace(s, extra=ex)


def ref(paths: dict[str, str], version: int, pid: int = 0) -> ContainerRef:
    return ContainerRef("t", "t", "", "/box/t", version, paths, pid=pid)


# -- the new default fields, on the fixture trees ---------------------------------------

def test_new_memory_and_cpu_fields_from_both_fixture_trees() -> None:
    for root in ("cgroup_v1", "cgroup_v2"):
        r = open_reader(ContainerRef("/box/test-capture", "", "", "/box/test-capture", 0, {}),
                        cgroup_root=str(FIXTURES / root))
        try:
            m = r.read().memory
        finally:
            r.close()
        assert (m.active_file, m.inactive_file, m.file_dirty, m.refault_file) == (
            745472, 102400, 12288, 204), root
        kmem = (FIXTURES / root / "memory/box/test-capture/memory.kmem.usage_in_bytes")
        assert m.kernel == (int(kmem.read_text()) if root == "cgroup_v1" else 401408)


def test_v1_cfs_burst_counters(tmp_path: Path) -> None:
    from tests.collector.test_collector_contract import copy_tree

    tree = copy_tree(FIXTURES / "cgroup_v1", tmp_path / "cg")
    (tree / "cpu/box/test-capture/cpu.stat").write_text(
        "nr_periods 25\nnr_throttled 22\nthrottled_time 1052011886\nnr_bursts 4\n"
        "burst_time 7000\n")
    r = open_reader(ContainerRef("/box/test-capture", "", "", "/box/test-capture", 0, {}),
                    cgroup_root=str(tree), spec_every=1)
    try:
        cpu = r.read().cpu
    finally:
        r.close()
    assert (cpu.nr_bursts, cpu.burst_ns) == (4, 7000)


def test_v1_blkio_scheduler_groups_where_the_kernel_has_them(tmp_path: Path) -> None:
    from tests.collector.test_collector_contract import copy_tree

    tree = copy_tree(FIXTURES / "cgroup_v1", tmp_path / "cg")
    g = tree / "blkio/box/test-capture"
    before = open_reader(ContainerRef("/box/test-capture", "", "", "/box/test-capture", 0, {}),
                         cgroup_root=str(tree))
    try:
        io = before.read().blkio["254:0"]
    finally:
        before.close()
    assert io.has == frozenset() and io.by_op["Read"] == io.read_bytes
    (g / "blkio.io_merged_recursive").write_text("254:0 Read 5\n254:0 Write 6\nTotal 11\n")
    (g / "blkio.io_service_time_recursive").write_text(
        "254:0 Read 100\n254:0 Write 200\n254:0 Total 300\nTotal 300\n")
    (g / "blkio.io_queued_recursive").write_text("254:0 Total 2\nTotal 2\n")
    r = open_reader(ContainerRef("/box/test-capture", "", "", "/box/test-capture", 0, {}),
                    cgroup_root=str(tree))
    try:
        io = r.read().blkio["254:0"]
    finally:
        r.close()
    assert io.has == {"merged", "time", "queued"}
    assert (io.read_merged, io.write_merged, io.read_time_ns, io.write_time_ns, io.time_ns,
            io.queued) == (5, 6, 100, 200, 300, 2)


# -- v2-only files, generated -----------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(st.integers(1, 300), st.integers(0, 255)),
                       st.tuples(U64, U64, U64, U64, st.none() | U64,
                                 st.none() | st.tuples(U64, U64, U64, U64)),
                       max_size=4))
def test_v2_io_stat_generated(devs: dict) -> None:
    lines = []
    for (major, minor), (rb, wb, ro, wo, db, cost) in devs.items():
        words = [f"{major}:{minor}", f"rbytes={rb}", f"wbytes={wb}", f"rios={ro}", f"wios={wo}"]
        if db is not None:
            words += [f"dbytes={db}", "dios=1"]
        if cost is not None:
            words += ["cost.vrate=99", *(f"cost.{k}={v}" for k, v in
                                          zip(("usage", "wait", "indebt", "indelay"), cost,
                                              strict=True))]
        lines.append(" ".join(words))
    out = parse_io_stat(("\n".join(lines) + "\n").encode())
    assert set(out) == {f"{a}:{b}" for a, b in devs}
    for (major, minor), (rb, wb, ro, wo, db, cost) in devs.items():
        io = out[f"{major}:{minor}"]
        assert (io.read_bytes, io.write_bytes, io.read_ops, io.write_ops) == (rb, wb, ro, wo)
        assert io.by_op == ({"Read": rb, "Write": wb} | ({"Discard": db} if db is not None
                                                           else {}))
        assert ("cost" in io.has) == (cost is not None)
        if cost is not None:
            assert (io.cost_usage_us, io.cost_wait_us, io.cost_indebt_us,
                    io.cost_indelay_us) == cost


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["64KB", "2MB", "32MB", "1GB"]),
                       st.tuples(U64, U64), min_size=1, max_size=4),
       st.integers(1, 3))
def test_v2_hugetlb_generated(sizes: dict, reads: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="box-hugetlb-") as d:
        for size, (current, fails) in sizes.items():
            Path(d, f"hugetlb.{size}.current").write_text(f"{current}\n")
            Path(d, f"hugetlb.{size}.max").write_text("max\n")
            Path(d, f"hugetlb.{size}.events").write_text(f"max {fails}\n")
            Path(d, f"hugetlb.{size}.events.local").write_text(f"max {fails}\n")
        held = Held(d)
        try:
            h = V2Hugetlb(held)
            for _ in range(reads):
                out = h.read()
        finally:
            held.close()
    assert out == {size: (cur, cur, fails) for size, (cur, fails) in sizes.items()}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["anon", "file", "unevictable", "kernel_stack",
                                        "shmem", "file_dirty"]),
                       st.lists(st.integers(0, 2**40), min_size=1, max_size=3), min_size=1))
def test_v2_numa_stat_generated(rows: dict) -> None:
    text = "".join(f"{k} " + " ".join(f"N{i}={v}" for i, v in enumerate(vals)) + "\n"
                   for k, vals in rows.items())
    want = {(k, "hierarchy", str(i)): v // PAGE for k, vals in rows.items()
            if k in ("anon", "file", "unevictable") for i, v in enumerate(vals)}
    assert numa_v2(text.encode()) == want


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({k.decode(): U64 for k in STAT_KEYS}), st.randoms())
def test_v2_memory_stat_generated(values: dict, rnd) -> None:
    import tempfile

    items = list(values.items()) + [("slab", 1), ("zswap", 2)]
    rnd.shuffle(items)
    with tempfile.TemporaryDirectory(prefix="box-memstat-") as d:
        Path(d, "memory.current").write_text("1000\n")
        Path(d, "memory.stat").write_text("".join(f"{k} {v}\n" for k, v in items))
        held = Held(d)
        try:
            m = V2Memory(held).read()
        finally:
            held.close()
    assert (m.kernel, m.active_file, m.inactive_file, m.file_dirty, m.file_writeback,
            m.pgscan, m.pgsteal, m.refault_anon, m.refault_file) == tuple(values[k] for k in (
                "kernel", "active_file", "inactive_file", "file_dirty", "file_writeback",
                "pgscan", "pgsteal", "workingset_refault_anon", "workingset_refault_file"))


@settings(max_examples=60, deadline=None)
@given(st.tuples(U64, U64, U64, U64, U64, U64, U64, U64))
def test_v2_cpu_stat_burst_generated(v: tuple) -> None:
    import tempfile

    keys = ("usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled",
            "throttled_usec", "nr_bursts", "burst_usec")
    with tempfile.TemporaryDirectory(prefix="box-cpustat-") as d:
        Path(d, "cpu.stat").write_text("".join(f"{k} {x}\n" for k, x in zip(keys, v, strict=True))
                                       + "nice_usec 0\n")
        held = Held(d)
        try:
            cpu = V2Cpu(held).read()
        finally:
            held.close()
    assert (cpu.nr_bursts, cpu.burst_ns, cpu.throttled_ns) == (v[6], v[7] * 1000, v[5] * 1000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(TCP_STATES)), st.integers(0, 2**20),
                          st.integers(0, 2**20), st.integers(0, 10**6)), max_size=20))
def test_proc_net_tcp_and_udp_counts_generated(rows: list) -> None:
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  " \
           "timeout inode ref pointer drops\n"
    body = "".join(f"{i}: 0100007F:1F90 00000000:0000 {state} {tx:08X}:{rx:08X} 00:00000000 "
                   f"00000000     0        0 {1000 + i} 2 0000000000000000 {drops}\n"
                   for i, (state, tx, rx, drops) in enumerate(rows))
    tcp = count_tcp((head + body).encode())
    assert sum(tcp.values()) == len(rows) and set(tcp) == set(TCP_STATES.values())
    for code, name in TCP_STATES.items():
        assert tcp[name] == sum(1 for r in rows if r[0] == code)
    udp = count_udp((head + body).encode())
    assert udp == {"listen": sum(1 for r in rows if r[0] == "07"),
                   "dropped": sum(r[3] for r in rows), "rxqueued": sum(r[2] for r in rows),
                   "txqueued": sum(r[1] for r in rows)}


# -- v1 files this host has ------------------------------------------------------------

def test_v1_numa_stat_of_this_host() -> None:
    data = Path("/sys/fs/cgroup/memory/memory.numa_stat").read_bytes()
    out = numa_v1(data)
    first = data.split(b"\n")[0].split()  # total=N N0=a ...: file+anon+unevictable
    total = int(first[0].partition(b"=")[2])
    container = sum(v for (t, scope, _), v in out.items() if scope == "container")
    assert container <= total and {s for _, s, _ in out} == {"container", "hierarchy"}


def test_v1_hugetlb_reader_on_a_fixture_dir(tmp_path: Path) -> None:
    for size, (u, m, f) in {"2MB": (2 << 20, 4 << 20, 3), "1GB": (0, 1 << 30, 0)}.items():
        (tmp_path / f"hugetlb.{size}.usage_in_bytes").write_text(f"{u}\n")
        (tmp_path / f"hugetlb.{size}.max_usage_in_bytes").write_text(f"{m}\n")
        (tmp_path / f"hugetlb.{size}.failcnt").write_text(f"{f}\n")
        (tmp_path / f"hugetlb.{size}.limit_in_bytes").write_text("-1\n")
    held = Held(str(tmp_path))
    try:
        assert V1Hugetlb(held).read() == {"1GB": (0, 1 << 30, 0), "2MB": (2 << 20, 4 << 20, 3)}
    finally:
        held.close()


def test_task_states_over_netlink_on_a_real_v1_group(v1_group) -> None:
    g = v1_group()
    g.spawn(SLEEP)
    g.spawn([sys.executable, "-I", "-S", "-c", "while True: pass"])
    netlink = Netlink()
    tasks = Tasks(g.paths["cpu"], 1, 1.0, netlink=netlink)
    try:
        deadline = time.monotonic() + 10
        while True:
            t = tasks.read()
            if (t.sleeping, t.running) == (1, 1) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        tasks.close()
        netlink.close()
    assert (t.sleeping, t.running, t.stopped) == (1, 1, 0)
    assert t.load >= 0 and t.load_d >= 0


def test_task_states_from_proc_on_the_unified_group(v2_group) -> None:
    """The hybrid host's unified group has cgroup.threads: the v2 path, for real."""
    v2_group.spawn(SLEEP)
    v2_group.spawn(SLEEP)
    tasks = Tasks(v2_group.paths["unified"], 2, 1.0)
    try:
        for _ in range(100):
            t = tasks.read()
            if t.sleeping == 2:
                break
            time.sleep(0.05)
    finally:
        tasks.close()
    assert (t.sleeping, t.running, t.iowait) == (2, 0, 0)
    assert 0 <= t.load < 2000  # milli-load, decaying from the start-up's running reads


def test_load_is_cadvisors_smoothing_in_milli_load(v2_group) -> None:
    import math

    tasks = Tasks(v2_group.paths["unified"], 2, 2.0)
    try:
        tasks._load = 3.0  # as if three tasks had been running
        t = tasks.read()  # none runs now: one decay step of a 2 s interval
    finally:
        tasks.close()
    assert t.load == float(int(3.0 * math.exp(-2.0 / 10) * 1000))


def test_extras_reader_on_a_real_v1_group(v1_group) -> None:
    """process (fds, sockets, the init's nofile), tcp in the process's netns, numa and
    cpuset.memory_migrate, on one real group; hugetlb is empty: not mounted here."""
    g = v1_group()
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()
    code = (f"import socket, resource, time; resource.setrlimit(resource.RLIMIT_NOFILE, "
            f"(321, 1024)); s = socket.create_server(('127.0.0.1', {port})); time.sleep(60)")
    p = g.spawn([sys.executable, "-I", "-S", "-c", code])
    netlink = Netlink()
    ex_reader = ExtrasReader(ref(g.paths, 1, p.pid), {
        "process", "tcp", "udp", "memory_numa", "cpuset", "hugetlb", "cpuLoad"}, 1.0,
        netlink=netlink)
    try:
        for _ in range(200):
            ex = ex_reader.read()
            if ex.processes and ex.processes.sockets and ex.processes.max_open_files == 321:
                break
            time.sleep(0.05)
        fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    finally:
        ex_reader.close()
        netlink.close()
    assert ex.processes is not None
    assert (ex.processes.processes, ex.processes.sockets, ex.processes.max_open_files,
            ex.processes.fds) == (1, 1, 321, fds)
    assert ex.tcp["listen"] >= 1  # the host's netns: this one and whatever else listens
    assert set(ex.udp) == {"listen", "dropped", "rxqueued", "txqueued"}
    assert ex.numa and {k[1] for k in ex.numa} == {"container", "hierarchy"}
    assert ex.memory_migrate in (0, 1)
    assert ex.hugetlb == {}  # no hugetlb hierarchy in the group's paths
    assert ex.tasks is not None and ex.tasks.sleeping == 1


def test_extras_of_a_group_without_files_stay_empty(tmp_path: Path) -> None:
    r = ref({"unified": str(tmp_path)}, 2, 0)
    ex_reader = ExtrasReader(r, {"process", "tcp", "memory_numa", "hugetlb", "cpuLoad"})
    try:
        ex = ex_reader.read()
    finally:
        ex_reader.close()
    assert ex == Extras()


def test_process_counts_unaffected_by_subprocess_leftovers() -> None:
    # cgroupstats.procs tolerates pids that exit between listing and reading
    from cgroupstats.procs import process_stats

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stats = process_stats(f"{os.getpid()}\n{dead}\n".encode(), "/proc", os.getpid())
    assert stats.processes == 2 and stats.fds >= 3


def test_api_json_of_a_sample_with_every_group() -> None:
    import orjson

    from collector.api import dumps, sample_to_dict
    from tests.collector.test_collector_prometheus import _synthetic

    s = with_extras(_synthetic(2)[1])
    doc = orjson.loads(dumps(sample_to_dict(s)))
    assert doc["extra"]["numa"] == {"file/hierarchy/0": 12, "anon/container/0": 3}
    assert doc["extra"]["hugetlb"]["2MB"] == {"usage": 2 << 20, "max_usage": 4 << 20,
                                              "failcnt": 1}
    assert doc["extra"]["tasks"]["load"] == 1500.0 and doc["health"] == ""
    assert doc["blkio"]["8:0"]["has"] == []


def test_task_counts_of_an_idle_group_are_kept_until_its_usage_moves(v2_group) -> None:
    """Counts are asked for again only when usage moved (or a task was running, D or
    stopped): the usage handed in decides, so a second sleeper added while the usage
    given stays the same is seen once it moves."""
    v2_group.spawn(SLEEP)
    tasks = Tasks(v2_group.paths["unified"], 2, 1.0)
    try:
        for _ in range(100):
            first = tasks.read()
            if (first.sleeping, first.running) == (1, 0):
                break
            time.sleep(0.05)
        assert tasks.read(5) is not None and tasks.read(5).sleeping == 1
        v2_group.spawn(SLEEP)
        time.sleep(0.3)
        kept = tasks.read(5)
        assert kept.sleeping == 1
        assert tasks.read(6).sleeping == 2
    finally:
        tasks.close()


def test_tcp_udp_read_once_per_network_namespace_and_tick(v1_group) -> None:
    """Two processes in one namespace share one reading (a pod's containers); one in
    its own namespace gets its own."""
    g = v1_group()
    a, b = g.spawn(SLEEP), g.spawn(SLEEP)
    own = subprocess.Popen(["unshare", "--net", *SLEEP])
    mine = os.stat("/proc/self/ns/net").st_ino
    for _ in range(200):  # until unshare has its namespace (then it execs the sleeper)
        if os.stat(f"/proc/{own.pid}/ns/net").st_ino != mine:
            break
        time.sleep(0.01)
    readers = [ExtrasReader(ref(g.paths, 1, p.pid), {"tcp", "udp"}) for p in (a, b, own)]
    try:
        cache: dict = {}
        ra, rb, rown = (r.read(net_cache=cache) for r in readers)
        assert ra.tcp is rb.tcp and ra.udp6 is rb.udp6 and len(cache) == 2
        assert rown.tcp is not ra.tcp and sum(rown.tcp.values()) == 0  # a fresh namespace
        assert readers[0].read(net_cache={}).tcp is not ra.tcp  # a new tick reads again
    finally:
        for r in readers:
            r.close()
        own.kill()
        own.wait()
