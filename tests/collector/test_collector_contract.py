"""The v1 and v2 readers over their fixture trees fill the same fields of one Sample.

tests/fixtures/cgroup_v1 holds files captured from this machine's real v1 groups (a
throttled cpu burner with limits set); blkio's counters are in the kernel's documented
format because this VM's disk does not account I/O per cgroup. tests/fixtures/cgroup_v2
holds files written from the kernel's cgroup-v2 documentation, with the pressure files and
a controller-less group ("test-bare") captured from the real unified mount.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from cgroupstats import ContainerGone, ParseError, detect, open_reader
from cgroupstats.model import ContainerRef, Sample
from cgroupstats.v2.cpu import weight_to_shares

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
V1 = FIXTURES / "cgroup_v1"
V2 = FIXTURES / "cgroup_v2"
GROUP = "/box/test-capture"


def ref_for(cgroup: str = GROUP, pid: int = 0) -> ContainerRef:
    return ContainerRef(
        id=cgroup, name="", image="", cgroup=cgroup, cgroup_version=0, cgroup_paths={}, pid=pid
    )


def read(root: Path, cgroup: str = GROUP) -> Sample:
    reader = open_reader(ref_for(cgroup), cgroup_root=str(root))
    try:
        return reader.read()
    finally:
        reader.close()


# Fields both versions must fill (non-zero in both fixtures).
SHARED = {
    "cpu": ["usage_ns", "user_ns", "system_ns", "nr_periods", "nr_throttled", "throttled_ns"],
    "memory": [
        "usage",
        "working_set",
        "rss",
        "cache",
        "mapped_file",
        "pgfault",
        "pgmajfault",
        "max_usage",
    ],
    "pids": ["current", "max"],
    "spec": [
        "memory_limit",
        "swap_limit",
        "memory_reservation",
        "cpu_quota_us",
        "cpu_period_us",
        "cpu_shares",
        "cpuset_cpus",
        "cpuset_mems",
        "pids_max",
    ],
}
# What only one version has, by kernel design.
ONLY_V1 = {("cpu", "per_cpu_ns")}
ONLY_V2 = {
    ("memory", "events_high"),
    ("memory", "events_max"),
    ("memory", "events_oom"),
    ("memory", "failcnt"),  # v1's memory.failcnt is 0 in the capture (limit not hit)
    ("memory", "swap"),  # no swap on this machine: total_swap is 0 in the capture
    ("memory", "events_oom_kill"),
}


@pytest.mark.parametrize("root", [V1, V2], ids=["v1", "v2"])
def test_both_versions_fill_the_shared_fields(root: Path) -> None:
    sample = read(root)
    for part, names in SHARED.items():
        obj = getattr(sample, part)
        for name in names:
            assert getattr(obj, name), f"{root.name}: {part}.{name} is empty"
    assert sample.blkio["254:0"].read_bytes == 20971520
    assert sample.blkio["254:0"].write_bytes == 10485760
    assert sample.blkio["254:0"].read_ops == 160
    assert sample.blkio["254:0"].write_ops == 80
    m = sample.memory
    assert m.working_set == m.usage - 102400  # inactive_file is 102400 in both
    v2 = root == V2
    for part, name in ONLY_V1 | ONLY_V2:
        value = getattr(getattr(sample, part), name)
        expected_set = (part, name) in (ONLY_V2 if v2 else ONLY_V1)
        assert bool(value) == expected_set, f"{root.name}: {part}.{name} = {value!r}"
    assert (sample.psi.cpu is not None) == v2


def test_v1_values_are_the_captured_ones() -> None:
    s = read(V1)
    assert s.cpu.usage_ns == 1139884591
    assert (s.cpu.user_ns, s.cpu.system_ns) == (107 * 10**7, 6 * 10**7)  # USER_HZ 100
    assert s.cpu.per_cpu_ns == (39387403, 1100497188)
    assert (s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns) == (25, 22, 1052011886)
    assert (s.memory.usage, s.memory.rss, s.memory.cache) == (60919808, 59666432, 847872)
    assert s.spec == dataclasses.replace(
        s.spec,
        memory_limit=256 << 20,
        swap_limit=512 << 20,
        memory_reservation=128 << 20,
        cpu_quota_us=50000,
        cpu_period_us=100000,
        cpu_shares=512,
        cpuset_cpus="0-1",
        cpuset_mems="0",
        pids_max=100,
    )


def test_v2_values_follow_the_documented_formats() -> None:
    s = read(V2)
    assert s.cpu.usage_ns == 1139884 * 1000 and s.cpu.throttled_ns == 1052011 * 1000
    m = s.memory
    assert (m.rss, m.cache, m.mapped_file, m.swap, m.max_usage) == (
        59666432,
        847872,
        172032,
        4096,
        62914560,
    )
    assert (m.events_high, m.events_max, m.events_oom, m.events_oom_kill) == (3, 7, 1, 1)
    assert m.failcnt == 7
    assert s.spec.cpu_shares == weight_to_shares(20) == 500
    assert s.blkio["253:0"].read_bytes == 4096
    assert s.psi.io is not None and s.psi.io.full is not None
    assert s.psi.cpu is not None and s.psi.cpu.some.total_us > 0


def test_weight_maps_back_to_shares_like_cadvisor() -> None:
    assert weight_to_shares(1) == 2
    assert weight_to_shares(100) == 2597  # docker's 1024 shares -> weight 39..100 range
    assert weight_to_shares(10000) == 262144
    assert weight_to_shares(0) == 0


def test_v2_group_without_controllers_reads_zeros_not_errors() -> None:
    s = read(V2, "/box/test-bare")
    assert s.cpu.usage_ns == 1025808000 and s.cpu.nr_periods == 0
    assert s.memory.usage == 0 and s.blkio == {} and s.pids.current == 0
    assert s.spec.memory_limit == 0 and s.spec.cpu_quota_us == 0
    assert s.psi.cpu is not None and s.psi.cpu.full.total_us == 20775


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.mark.parametrize("root", [V1, V2], ids=["v1", "v2"])
def test_unlimited_is_reported_as_zero(tmp_path: Path, root: Path) -> None:
    tree = copy_tree(root, tmp_path / "cg")
    if root == V1:
        g = tree / "memory" / GROUP.strip("/")
        for f in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
            (g / f).write_text("9223372036854771712\n")
        (tree / "cpu" / GROUP.strip("/") / "cpu.cfs_quota_us").write_text("-1\n")
        (tree / "pids" / GROUP.strip("/") / "pids.max").write_text("max\n")
    else:
        g = tree / GROUP.strip("/")
        for f in ("memory.max", "memory.swap.max", "memory.low", "pids.max"):
            (g / f).write_text("max\n")
        (g / "cpu.max").write_text("max 100000\n")
    spec = read(tree).spec
    assert (spec.memory_limit, spec.swap_limit, spec.cpu_quota_us, spec.pids_max) == (0, 0, 0, 0)
    assert spec.cpu_period_us == 100000


def test_v1_blkio_falls_back_when_throttle_counters_are_empty(tmp_path: Path) -> None:
    tree = copy_tree(V1, tmp_path / "cg")
    g = tree / "blkio" / GROUP.strip("/")
    for f in g.glob("blkio.throttle.io_servic*"):
        f.write_text("Total 0\n")
    (g / "blkio.bfq.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\n"
        "Total 12288\n"
    )
    (g / "blkio.bfq.io_serviced_recursive").write_text("8:0 Read 1\n8:0 Write 2\nTotal 3\n")
    blkio = read(tree).blkio
    assert set(blkio) == {"8:0"}
    io = blkio["8:0"]
    assert (io.read_bytes, io.write_bytes, io.read_ops, io.write_ops) == (4096, 8192, 1, 2)
    assert io.by_op == {"Read": 4096, "Write": 8192, "Sync": 0, "Async": 0, "Discard": 0,
                        "Total": 12288}


def test_v1_comounted_cpu_cpuacct(tmp_path: Path) -> None:
    """``cpu,cpuacct`` as one mount, with the usual cpu and cpuacct symlinks to it."""
    tree = copy_tree(V1, tmp_path / "cg")
    both = tree / "cpu,cpuacct"
    shutil.copytree(tree / "cpuacct", both)
    for f in (tree / "cpu").rglob("*"):
        if f.is_file():
            target = both / f.relative_to(tree / "cpu")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    shutil.rmtree(tree / "cpu")
    shutil.rmtree(tree / "cpuacct")
    os.symlink("cpu,cpuacct", tree / "cpu")
    os.symlink("cpu,cpuacct", tree / "cpuacct")
    layout = detect(str(tree))
    assert layout.dirs["cpu"] == layout.dirs["cpuacct"] == str(both)
    reader = open_reader(ref_for(), cgroup_root=str(tree))
    try:
        s = reader.read()
        assert s.cpu.usage_ns == 1139884591 and s.cpu.nr_throttled == 22
        assert s.spec.cpu_quota_us == 50000
        files = reader.open_files
    finally:
        reader.close()
    separate = open_reader(ref_for(), cgroup_root=str(V1))
    assert files == separate.open_files  # the shared dir is opened once, not twice
    separate.close()


def test_a_malformed_file_is_named_with_its_content(tmp_path: Path) -> None:
    tree = copy_tree(V1, tmp_path / "cg")
    (tree / "memory" / GROUP.strip("/") / "memory.stat").write_text("cache 1\nrss zebra\n")
    with pytest.raises(ParseError) as info:
        read(tree)
    assert info.value.file == "memory.stat"
    assert "zebra" in str(info.value) and "\n" not in str(info.value)


def test_opening_a_missing_group_is_container_gone_without_leaking(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for root in (V1, V2):
        with pytest.raises(ContainerGone):
            open_reader(ref_for("/box/no-such-group"), cgroup_root=str(root))
    tree = copy_tree(V1, tmp_path / "cg")
    shutil.rmtree(tree / "pids" / GROUP.strip("/"))  # half gone: only the last controller
    with pytest.raises(ContainerGone):
        open_reader(ref_for(), cgroup_root=str(tree))
    assert len(os.listdir("/proc/self/fd")) == before


def test_network_comes_from_the_init_pid(tmp_path: Path) -> None:
    reader = open_reader(ref_for(pid=4242), cgroup_root=str(V2), proc_root=str(FIXTURES / "proc"))
    try:
        s = reader.read()
    finally:
        reader.close()
    assert set(s.network) == {"eth0", "vbox1"}
    assert s.network["eth0"].rx_bytes == 123456789012
    assert reader.open_files == 0


def test_spec_every_n_rereads_limits_only_every_nth_sample(tmp_path: Path) -> None:
    tree = copy_tree(V1, tmp_path / "cg")
    reader = open_reader(ref_for(), cgroup_root=str(tree), spec_every=3)
    try:
        assert reader.read().spec.memory_limit == 256 << 20
        (tree / "memory" / GROUP.strip("/") / "memory.limit_in_bytes").write_text("1048576\n")
        (tree / "pids" / GROUP.strip("/") / "pids.max").write_text("7\n")
        assert [reader.read().spec.memory_limit for _ in range(2)] == [256 << 20] * 2
        s = reader.read()
        assert s.spec.memory_limit == 1048576 and s.spec.pids_max == 7 and s.pids.max == 7
    finally:
        reader.close()


# -- what is read less often, and why it still means the same -------------------------


def _v1_copy(tmp_path: Path, limited: bool) -> tuple[Path, Path, Path]:
    import shutil

    root = tmp_path / "cg"
    shutil.copytree(V1, root)
    mem, cpu = root / "memory" / GROUP[1:], root / "cpu" / GROUP[1:]
    if not limited:
        (mem / "memory.limit_in_bytes").write_text("9223372036854771712\n")
        (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    return root, mem, cpu


CFS = "nr_periods {}\nnr_throttled {}\nthrottled_time {}\n"


def test_v1_limited_group_reads_failcnt_and_throttling_every_sample(tmp_path: Path) -> None:
    root, mem, cpu = _v1_copy(tmp_path, limited=True)
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=100)
    try:
        reader.read()
        (mem / "memory.failcnt").write_text("5\n")
        (cpu / "cpu.stat").write_text(CFS.format(40, 7, 123))
        s = reader.read()
        assert s.memory.failcnt == 5
        assert (s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns) == (40, 7, 123)
    finally:
        reader.close()


def test_v1_unlimited_group_reads_failcnt_and_throttling_with_the_spec(tmp_path: Path) -> None:
    """Without a limit / quota the kernel cannot advance memory.failcnt / cpu.stat's
    bandwidth counters, so they are read with the limits (every spec_every samples and
    on a new ref), and a limit set meanwhile is followed from the next spec read on."""
    root, mem, cpu = _v1_copy(tmp_path, limited=False)
    (mem / "memory.failcnt").write_text("3\n")
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=3)
    try:
        first = reader.read()  # reads the spec, and with it failcnt and cpu.stat
        assert first.spec.memory_limit == 0 and first.spec.cpu_quota_us == 0
        assert first.memory.failcnt == 3
        (mem / "memory.failcnt").write_text("4\n")  # e.g. reset by hand, then a limit hit
        (cpu / "cpu.stat").write_text(CFS.format(40, 7, 123))
        (mem / "memory.limit_in_bytes").write_text("1048576\n")
        (cpu / "cpu.cfs_quota_us").write_text("20000\n")
        assert reader.read().memory.failcnt == 3  # samples 2, 3: until the spec is due
        assert reader.read().cpu.nr_periods == first.cpu.nr_periods
        s = reader.read()  # sample 4: spec read, limit and quota seen, counters read
        assert (s.spec.memory_limit, s.spec.cpu_quota_us) == (1048576, 20000)
        assert s.memory.failcnt == 4 and s.cpu.nr_periods == 40
        (mem / "memory.failcnt").write_text("9\n")
        assert reader.read().memory.failcnt == 9  # limited now: every sample
        # a new ref (a rewritten state file: docker update) re-reads the spec at once
        (mem / "memory.limit_in_bytes").write_text("2097152\n")
        reader.rebind(dataclasses.replace(reader.ref, state_mtime_ns=1))
        assert reader.read().spec.memory_limit == 2097152
    finally:
        reader.close()


def test_v1_memory_stat_layouts(tmp_path: Path) -> None:
    """The total_ values are picked by learned position; another kernel's order or a
    missing key (no swap accounting) is learned again, never misread."""
    from cgroupstats.v1.memory import OWN_KEYS, total_fields

    keys = [k.decode() for k in OWN_KEYS]  # cache, rss, ..., the refaults
    own = "".join(f"{k} 1\n" for k in keys)

    def stat(order: list[str]) -> bytes:
        values = {k: 10 + i for i, k in enumerate(keys)}
        return (own + "".join(f"total_{k} {values.get(k, 99)}\n" for k in order)).encode()

    want = [10 + i for i in range(len(keys))]
    assert total_fields(stat(keys)) == want
    assert total_fields(stat(keys)) == want  # by position now
    shuffled = [*keys[3:], "shmem", *keys[:3]]
    assert total_fields(stat(shuffled)) == want
    no_swap = [k for k in keys if k != "swap"]
    assert total_fields(stat(no_swap)) == [*want[:3], 0, *want[4:]]
    assert total_fields(stat(keys)) == want
    assert total_fields(own.encode()) is None  # no hierarchical half


def test_v1_max_usage_is_the_kernel_mark_raised_by_usage_between_spec_reads(tmp_path: Path) -> None:
    """memory.max_usage_in_bytes is read with the limits; in between the maximum follows
    every usage seen, never goes down, and takes the kernel's mark (even a reset one) at
    the next spec read."""
    root, mem, _ = _v1_copy(tmp_path, limited=True)
    (mem / "memory.usage_in_bytes").write_text("1000\n")
    (mem / "memory.max_usage_in_bytes").write_text("5000\n")
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=4)
    try:
        assert reader.read().memory.max_usage == 5000  # sample 1: the kernel's mark
        (mem / "memory.max_usage_in_bytes").write_text("9000\n")  # a peak between samples
        (mem / "memory.usage_in_bytes").write_text("7000\n")
        assert reader.read().memory.max_usage == 7000  # raised by what was seen
        (mem / "memory.usage_in_bytes").write_text("2000\n")
        assert reader.read().memory.max_usage == 7000  # never down
        assert reader.read().memory.max_usage == 7000
        assert reader.read().memory.max_usage == 9000  # sample 5: spec read, kernel's mark
        (mem / "memory.max_usage_in_bytes").write_text("0\n")  # reset by hand
        reader.rebind(dataclasses.replace(reader.ref, state_mtime_ns=1))
        assert reader.read().memory.max_usage == 2000  # the reset mark, raised by usage
    finally:
        reader.close()


def _vmstat(proc: Path, kills: int) -> None:
    proc.mkdir(exist_ok=True)
    (proc / "vmstat").write_text(f"nr_free_pages 1\noom_kill {kills}\nnuma_pte_updates 0\n")


def test_host_oom_kills_gate_opens_for_the_interval_of_a_change_and_the_next(
    tmp_path: Path,
) -> None:
    from cgroupstats.oomkills import HostOomKills

    proc = tmp_path / "proc"
    _vmstat(proc, 3)
    gate = HostOomKills(str(proc))
    try:
        seen = []
        for kills in (3, 3, 3, 3, 4, 4, 4, 4):
            _vmstat(proc, kills)
            gate.advance()
            seen.append(gate.open)
        assert seen == [True, True, False, False, True, True, False, False]
    finally:
        gate.close()
    assert HostOomKills(str(tmp_path / "no-proc")).open  # unreadable: always open
    (proc / "vmstat").write_text("nr_free_pages 1\n")  # a kernel without the counter
    old = HostOomKills(str(proc))
    for _ in range(3):
        old.advance()
        assert old.open


def test_v1_oom_kill_is_read_while_the_host_counter_moves(tmp_path: Path) -> None:
    """memory.oom_control is read when the host's vmstat oom_kill changed (this interval
    or the one before) and with the limits; otherwise the last value stands."""
    from cgroupstats.oomkills import HostOomKills

    root, mem, _ = _v1_copy(tmp_path, limited=True)
    proc = tmp_path / "proc"
    _vmstat(proc, 10)
    gate = HostOomKills(str(proc))
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=100, oom=gate)
    oom = mem / "memory.oom_control"

    def sample(host_kills: int) -> int:
        _vmstat(proc, host_kills)
        gate.advance()
        return reader.read().memory.events_oom_kill

    try:
        assert [sample(10) for _ in range(3)] == [0, 0, 0]
        oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        assert sample(10) == 0  # the host counted nothing: not read
        assert sample(12) == 2  # it moved: read
        oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")  # a late bump
        assert sample(12) == 3  # still open for the interval after a change
        oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
        assert sample(12) == 3
        reader.rebind(dataclasses.replace(reader.ref, state_mtime_ns=1))
        assert sample(12) == 4  # a spec read reads it whatever the host says
    finally:
        reader.close()
        gate.close()


def test_v1_cpuacct_stat_is_read_when_usage_moved(tmp_path: Path) -> None:
    """The kernel's user/system split changes only when usage grows (cputime_adjust), so
    an idle group keeps its last split; any change of usage reads it again."""
    root = copy_tree(V1, tmp_path / "cg")
    acct = root / "cpuacct" / GROUP[1:]
    (acct / "cpuacct.usage_percpu").write_text("1000000000 500000000 \n")
    (acct / "cpuacct.stat").write_text("user 100\nsystem 20\n")
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=100)
    tick = 10**9 // os.sysconf("SC_CLK_TCK")
    try:
        s = reader.read()
        assert (s.cpu.usage_ns, s.cpu.user_ns, s.cpu.system_ns) == (
            1_500_000_000,
            100 * tick,
            20 * tick,
        )
        (acct / "cpuacct.stat").write_text("user 999\nsystem 999\n")  # cannot happen idle
        assert reader.read().cpu.user_ns == 100 * tick  # usage still: not read
        (acct / "cpuacct.usage_percpu").write_text("1000000001 500000000 \n")
        s = reader.read()
        assert (s.cpu.usage_ns, s.cpu.user_ns, s.cpu.system_ns) == (
            1_500_000_001,
            999 * tick,
            999 * tick,
        )
    finally:
        reader.close()


def test_v1_cpu_stat_is_read_while_the_quota_timer_can_count(tmp_path: Path) -> None:
    """With a quota, cpu.stat is read while usage moves and until a read lands two
    periods (+ slack) after the last move; after that an idle group's file is not read,
    and the next move of usage reads it again."""
    import time

    from cgroupstats.v1.cpu import TIMER_SLACK_NS

    root, _, cpu = _v1_copy(tmp_path, limited=True)
    (cpu / "cpu.cfs_period_us").write_text("10000\n")  # 10 ms: the tail is 120 ms
    acct = root / "cpuacct" / GROUP[1:]
    (acct / "cpuacct.usage_percpu").write_text("100 200 \n")
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=1000)
    tail = (2 * 10_000_000 + TIMER_SLACK_NS) / 1e9
    try:
        reader.read()  # usage seen for the first time: read
        (cpu / "cpu.stat").write_text(CFS.format(11, 1, 10))
        assert reader.read().cpu.nr_periods == 11  # within the tail: read
        time.sleep(tail + 0.05)
        (cpu / "cpu.stat").write_text(CFS.format(12, 1, 10))  # the timer's last period
        assert reader.read().cpu.nr_periods == 12  # the read that lands after the tail
        (cpu / "cpu.stat").write_text(CFS.format(99, 9, 99))  # cannot happen idle
        assert reader.read().cpu.nr_periods == 12  # idle and past the tail: not read
        (acct / "cpuacct.usage_percpu").write_text("101 200 \n")
        assert reader.read().cpu.nr_periods == 99  # it ran again: read
    finally:
        reader.close()


def test_v2_peak_is_the_kernel_mark_raised_by_usage_between_spec_reads(tmp_path: Path) -> None:
    tree = copy_tree(V2, tmp_path / "cg")
    group = tree / GROUP[1:]
    (group / "memory.current").write_text("1000\n")
    (group / "memory.peak").write_text("5000\n")
    reader = open_reader(ref_for(), cgroup_root=str(tree), spec_every=3)
    try:
        assert reader.read().memory.max_usage == 5000
        (group / "memory.peak").write_text("9000\n")
        (group / "memory.current").write_text("6000\n")
        assert reader.read().memory.max_usage == 6000  # raised by what was seen
        (group / "memory.current").write_text("10\n")
        assert reader.read().memory.max_usage == 6000  # never down
        assert reader.read().memory.max_usage == 9000  # spec read: the kernel's mark
    finally:
        reader.close()


def test_v1_unchanged_files_give_the_same_values_and_any_change_is_seen(tmp_path: Path) -> None:
    """An idle group's unchanged files are not parsed again (the previous objects are
    handed out), yet a change in any one file shows: memory.stat alone, usage_percpu
    alone, or the blkio ops file alone (an empty flush counts an op and no bytes)."""
    root = copy_tree(V1, tmp_path / "cg")
    mem, acct, blk = (root / c / GROUP[1:] for c in ("memory", "cpuacct", "blkio"))
    reader = open_reader(ref_for(), cgroup_root=str(root), spec_every=100)
    try:
        first = reader.read()
        again = reader.read()
        assert again.memory is first.memory and again.cpu is first.cpu
        assert again.blkio is first.blkio and again.blkio["254:0"].write_ops == 80
        stat = (mem / "memory.stat").read_text()
        (mem / "memory.stat").write_text(stat.replace("total_pgfault ", "total_pgfault 1"))
        assert reader.read().memory.pgfault == int("1" + str(first.memory.pgfault))
        (acct / "cpuacct.usage_percpu").write_text("5 7 \n")
        assert reader.read().cpu.per_cpu_ns == (5, 7)
        ops = blk / "blkio.throttle.io_serviced_recursive"
        ops.write_text(ops.read_text().replace("254:0 Write 80", "254:0 Write 81"))
        s = reader.read()
        assert s.blkio["254:0"].write_ops == 81
        assert s.blkio["254:0"].write_bytes == first.blkio["254:0"].write_bytes
    finally:
        reader.close()
