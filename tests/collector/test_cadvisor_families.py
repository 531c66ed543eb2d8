"""cAdvisor's families, compared with ours: every family of cAdvisor's default set is
exported with cAdvisor's name, TYPE and label names; every category its
``--enable_metrics`` / ``--disable_metrics`` accept either exports all its families or
is refused at start with one line naming it. The facts come from cAdvisor's own source
(``tests/fixtures/cadvisor/container_families.txt``, see its header)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cgroupstats.layout import detect
from collector.discover import Discovery
from collector.metrics import (
    DEFAULT,
    DeviceNames,
    MetricsError,
    by_category,
    included,
    metric_table,
)
from collector.metrics import categories as cats
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink
from tests.support.prometheus import CADVISOR_LINT, promtool_objections, promtool_unexpected

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cadvisor" / "container_families.txt"
PMU = Path("/sys/bus/event_source/devices/cpu")

# Families of cAdvisor's default set not exported here, each with why: they need a
# hardware feature this machine lacks (checked below, so the list cannot go stale).
NOT_EXPORTED = {
    "container_perf_events_total": "perf_event: hardware counters; no cpu PMU on this machine",
    "container_perf_events_scaling_ratio": "perf_event: as above",
    "container_perf_uncore_events_total": "perf_event: uncore PMUs; none on this machine",
    "container_perf_uncore_events_scaling_ratio": "perf_event: as above",
}


def cadvisor() -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], dict[str, set[str]]]:
    """name -> (TYPE, category, extra labels); and the header's category lists."""
    fams, header = {}, {}
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("# default categories:") or line.startswith("# opt-in categories:"):
            key, _, names = line[2:].partition(":")
            header[key.split()[0]] = set(names.split())
        elif line and not line.startswith("#"):
            name, mtype, cat, labels = line.split()
            fams[name] = (mtype, cat, tuple(labels.split(",")) if labels != "-" else ())
    return fams, header


def test_fixture_agrees_with_our_category_names() -> None:
    fams, header = cadvisor()
    assert header["default"] == set(DEFAULT) | {"perf_event", "app"}
    assert header["default"] | header["opt-in"] == set(cats.ALL)
    assert {c for _, c, _ in fams.values()} <= set(cats.ALL) | {"always"}
    assert len(fams) == 105


def test_every_family_of_the_default_set_with_cadvisors_type_and_labels() -> None:
    """The default table against cAdvisor's: same TYPE (a counter stays a counter, even
    where promtool objects) and the same extra label names; a missing family must be
    in NOT_EXPORTED with its reason, and nothing listed there may be exported."""
    fams, _ = cadvisor()
    ours = {f.name: f for f in metric_table(DeviceNames(), DEFAULT)}
    missing = []
    for name, (mtype, cat, labels) in fams.items():
        if cat not in DEFAULT and cat != "always":
            continue
        if name in NOT_EXPORTED:
            assert name not in ours, f"{name} is exported: take it off NOT_EXPORTED"
            continue
        if name not in ours:
            missing.append(name)
            continue
        assert (ours[name].type, ours[name].extra) == (mtype, labels), name
    assert missing == []
    assert not PMU.exists(), "this machine has a cpu PMU now: export perf_event's families"
    assert "perf_event" in cats.NOT_EXPORTED  # and --enable_metrics=perf_event is refused


def test_every_category_exports_its_families_or_is_refused() -> None:
    fams, _ = cadvisor()
    table = by_category(DeviceNames(), True)
    for cat in cats.ALL:
        wanted = {n: (t, labels) for n, (t, c, labels) in fams.items() if c == cat}
        if cat in cats.NOT_EXPORTED:
            with pytest.raises(MetricsError) as err:
                included(enable=cat)
            assert len(err.value.lines) == 1 and f" {cat} is not exported: " in str(err.value)
            assert cat not in table
            continue
        ours = {f.name: (f.type, f.extra) for f in metric_table(DeviceNames(), {cat})}
        assert {n: ours.get(n) for n in wanted} == wanted, cat
        assert included(enable=cat) == {cat}


def test_switches_follow_cadvisors_rules() -> None:
    assert included() == DEFAULT - {"perf_event", "app"}
    assert {"cpu", "memory", "percpu", "disk", "diskIO", "network", "cpuLoad", "oom_event",
            "pressure"} == included()
    # --enable_metrics is the whole set and wins over --disable_metrics
    assert included("process,tcp", "cpu") == {"process", "tcp"}
    # --disable_metrics replaces the default ignore set (so tcp, process... come on), and
    # a category it leaves on that is not exported is refused, one line each
    with pytest.raises(MetricsError) as err:
        included(None, "percpu")
    assert [ln.split()[1] for ln in err.value.lines] == sorted(
        set(cats.NOT_EXPORTED) - cats.INERT_BY_DEFAULT)
    on = included(None, ",".join(["percpu", *sorted(cats.NOT_EXPORTED)]))
    assert {"tcp", "udp", "process", "hugetlb", "memory_numa", "cpuset"} <= on
    assert "percpu" not in on
    with pytest.raises(MetricsError, match="unsupported metric 'bogus'"):
        included("cpu,bogus")


@pytest.mark.parametrize("flag", ["--enable_metrics=cpu,sched", "--enable_metrics=bogus"])
def test_collector_refuses_a_category_at_start_with_one_line(flag: str, tmp_path: Path) -> None:
    boxwatch = str(Path(sys.executable).parent / "boxwatch")
    run = subprocess.run([boxwatch, "collector", flag, "--root", str(tmp_path), "--listen", ""],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert ("sched is not exported" if "sched" in flag else "'bogus'") in lines[0]
    assert "Traceback" not in run.stderr


def _exposition(categories: set[str]) -> bytes:
    from tests.collector.test_collector_prometheus import _self_metrics, _synthetic
    from tests.collector.test_opt_in_groups import with_extras

    prom = PrometheusSink(("team",), categories=categories, self_metrics=_self_metrics)
    prom.write([with_extras(s) for s in _synthetic(8)])
    return prom.render()


def test_exposition_types_are_cadvisors_and_promtool_objects_only_to_cadvisor_names() -> None:
    """Rendered with every category that is exported: each family's TYPE line is
    cAdvisor's; promtool objects to cAdvisor's own names (a counter without _total, gauges
    ending in _total, an abbreviated unit) and to nothing else: cAdvisor's names win."""
    fams, _ = cadvisor()
    every = set(cats.ALL) - set(cats.NOT_EXPORTED)
    text = _exposition(every)
    types = {f.name if f.type != "counter" else f.name + "_total": f.type
             for f in text_string_to_metric_families(text.decode())}
    for line in text.decode().splitlines():
        if line.startswith("# TYPE container_"):
            _, _, name, mtype = line.split()
            if name in fams:
                assert mtype == fams[name][0], name
    assert types  # parsed
    assert promtool_unexpected(text) == []
    found, _ = promtool_objections(text)
    assert ("container_memory_failcnt", 'counter metrics should have "_total" suffix') in found
    assert found <= CADVISOR_LINT


def test_a_real_container_through_the_pipeline_with_every_exported_category(box) -> None:
    """The path production takes: discovery, readers, the opt-in readers, the sink."""
    cid = box.ok("run", "-d", "--name", "i16a-web", "busybox", "sh", "-c",
                 "ulimit -n 777; exec httpd -f -p 8080").strip()
    every = set(cats.ALL) - set(cats.NOT_EXPORTED)
    prom = PrometheusSink(categories=every)
    pipe = Pipeline(Discovery([box.root], "/sys/fs/cgroup"), [prom], categories=every,
                    interval=0.2)
    try:
        import time

        for _ in range(50):
            samples = pipe.tick()
            mine = [s for s in samples if s.ref.id == cid]
            ex = mine[0].extra if mine else None
            if ex and ex.tcp.get("listen", 0) + ex.tcp6.get("listen", 0):
                break
            time.sleep(0.1)
        text = prom.render().decode()
    finally:
        pipe.close()
    got = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("name") == "i16a-web":
                got[(s.name, tuple(sorted((k, v) for k, v in s.labels.items()
                                          if k not in ("id", "image", "name"))))] = s.value
    # httpd listens on [::]:8080, a dual-stack socket: /proc/net/tcp6's
    assert got[("container_network_tcp_usage_total", (("tcp_state", "listen"),))] + got[
        ("container_network_tcp6_usage_total", (("tcp_state", "listen"),))] == 1
    assert ("container_network_udp_usage_total", (("udp_state", "listen"),)) in got
    assert got[("container_processes", ())] == 1
    assert got[("container_threads", ())] >= 1
    assert got[("container_sockets", ())] >= 1
    assert got[("container_file_descriptors", ())] >= 3
    assert got[("container_ulimits_soft", (("ulimit", "max_open_files"),))] == 777
    assert got[("container_tasks_state", (("state", "sleeping"),))] >= 1
    assert ("container_cpu_load_average_10s", ()) in got
    assert got[("container_health_state", ())] == -1  # no healthcheck
    assert got[("container_creation_time_seconds", ())] > 1.7e9
    layout = detect("/sys/fs/cgroup")
    # what this host has decides what must have a series (v1 here, v2 elsewhere)
    if layout.version == 1:
        assert ("container_memory_numa_pages", (("node", "0"), ("scope", "hierarchy"),
                                                ("type", "file"))) in got
        assert got[("container_memory_kernel_usage", ())] > 0
        assert got[("container_memory_migrate", ())] in (0, 1)
    hugetlb = [k for k in got if k[0] == "container_hugetlb_usage_bytes"]
    ref = mine[0].ref
    group = ref.unified_path if ref.cgroup_version == 2 else ref.cgroup_paths.get("hugetlb", "")
    has_hugetlb = bool(group) and any(n.startswith("hugetlb.") for n in os.listdir(group))
    assert bool(hugetlb) == has_hugetlb, group
    assert "# TYPE container_hugetlb_usage_bytes gauge\n" in text


def test_readme_lists_every_family_and_category() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Metrics: cAdvisor's families"):]
    for cat, fams in by_category(DeviceNames(), True).items():
        assert cat == "always" or f"`{cat}`" in section, cat
        for f in fams:
            assert f"`{f.name}" in section, f.name
    for cat in cats.NOT_EXPORTED:
        assert f"`{cat}`" in section, cat


def test_shipped_configs_enable_what_the_alert_rules_query() -> None:
    """The pids-limit alert queries container_threads (cAdvisor's opt-in "process"): every
    shipped collector configuration enables it beside cAdvisor's default set."""
    import re

    from boxwatch.stack.plan import PROCESS_TOO

    top = Path(__file__).resolve().parents[2]
    assert "container_threads" in (top / "grafana/prometheus/rules.yml").read_text()
    values = [PROCESS_TOO]
    for f in ("compose/docker-compose.yml", "compose/kubernetes/collector-daemonset.yaml"):
        values += re.findall(r"--enable_metrics=(\S+)", (top / f).read_text())
    assert len(values) == 3
    for value in values:
        assert included(value) == included() | {"process"}, value


def test_cpu_topology_machine_families_from_sysfs() -> None:
    """cpu_topology: cAdvisor's machine_* families with its labels, read from this
    machine's sysfs (checked against the files directly), both serialisers alike."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest

    prom = PrometheusSink(categories=included("cpu,cpu_topology"))
    text = prom.render()
    registry = CollectorRegistry()
    registry.register(prom)
    assert text == generate_latest(registry)
    fams = {f.name: f for f in text_string_to_metric_families(text.decode())
            if f.name.startswith("machine_")}
    base = {"boot_id", "machine_id", "system_uuid"}
    assert {n: set(f.samples[0].labels) - base for n, f in fams.items()} == {
        "machine_cpu_cache_capacity_bytes": {"node_id", "core_id", "type", "level"},
        "machine_thread_siblings_count": {"node_id", "core_id", "thread_id"},
        "machine_node_memory_capacity_bytes": {"node_id"},
        "machine_node_hugepages_count": {"node_id", "page_size"},
        "machine_node_distance": {"node_id", "target_node_id"},
    }
    assert all(f.type == "gauge" for f in fams.values())
    online = Path("/sys/devices/system/cpu/online").read_text().strip()
    from collector.metrics.machine import cpu_list

    threads = {s.labels["thread_id"] for s in fams["machine_thread_siblings_count"].samples}
    assert threads == {str(c) for c in cpu_list(online)}
    mem = Path("/sys/devices/system/node/node0/meminfo").read_text()
    kb = int(next(ln for ln in mem.splitlines() if "MemTotal:" in ln).split()[-2])
    node0 = [s for s in fams["machine_node_memory_capacity_bytes"].samples
             if s.labels["node_id"] == "0"]
    assert node0[0].value == kb * 1024
    l1 = [s for s in fams["machine_cpu_cache_capacity_bytes"].samples
          if s.labels["level"] == "1" and s.labels["core_id"] == "0"]
    size = Path("/sys/devices/system/cpu/cpu0/cache/index0/size").read_text().strip()
    assert l1 and int(size.rstrip("K")) * 1024 in {s.value for s in l1}
    assert promtool_unexpected(text) == []
