"""The Prometheus sink: a real ``prometheus`` scrapes ``/metrics`` of a running collector
and the series of a real box container come back from its API with the limits imposed;
``promtool check metrics`` passes; the prometheus_client collector and the direct text
writer export the same samples; names and help strings are cAdvisor's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cgroupstats.model import (
    ContainerRef,
    CpuStats,
    IoStats,
    LayerUsage,
    MemoryStats,
    NetStats,
    PidsStats,
    Psi,
    PsiLine,
    PsiStats,
    Sample,
    Spec,
)
from collector.api import Server
from collector.discover import Discovery
from collector.metrics import DEFAULT
from collector.pipeline import Pipeline, SelfStats
from collector.sinks.prometheus import PrometheusSink, sanitize
from tests.support.prometheus import Prometheus, promtool_unexpected


class Running:
    def __init__(self, root: Path, whitelist: tuple[str, ...] = ()) -> None:
        # the default set and "process" (container_threads_max), as --enable_metrics asks
        cats = DEFAULT | {"process"}
        self.prom = PrometheusSink(whitelist, categories=cats)
        self.pipeline = Pipeline(Discovery([root], "/sys/fs/cgroup", whitelist), [self.prom],
                                 interval=0.5, jitter=0.0, categories=cats)
        self.prom.self_metrics = self.pipeline.self_metrics
        self.server = Server(self.pipeline, self.prom, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.pipeline.run, daemon=True)

    def __enter__(self) -> Running:
        self.server.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.pipeline.stop()
        self.thread.join(10)
        self.server.stop()
        self.pipeline.close()


@pytest.fixture
def burner(box) -> Iterator[str]:
    cid = box.ok("run", "-d", "--name", "burner", "--cpus", "0.5", "-m", "64m",
                 "--pids-limit", "50", "--label", "com.example.team=db", "busybox", "sh", "-c",
                 "while :; do :; done").strip()
    yield cid


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.mark.slow
def test_collector_prometheus_scrapes_real_container(box, burner) -> None:
    with Running(box.root, ("com.example.team",)) as c, \
            Prometheus([f"127.0.0.1:{c.server.port}"], "1s") as prom:
        sel = f'{{name="burner",id="/box/{burner}"}}'
        limit = prom.wait_for(f"container_spec_memory_limit_bytes{sel}")
        assert float(limit[0]["value"][1]) == 64 << 20
        m = limit[0]["metric"]
        assert m["image"] == "busybox" and m["container_label_com_example_team"] == "db"
        quota = prom.wait_for(f"container_spec_cpu_quota{sel}")
        assert float(quota[0]["value"][1]) == 50000
        assert float(prom.wait_for(f"container_threads_max{sel}")[0]["value"][1]) == 50
        throttled = prom.wait_for(f"container_cpu_cfs_throttled_periods_total{sel} > 0")
        assert float(throttled[0]["value"][1]) > 0
        # cAdvisor's default set has "percpu": cpu00, cpu01, ... on v1 (v2: "total")
        usage = prom.wait_for('sum(container_cpu_usage_seconds_total{name="burner"})')
        assert float(usage[0]["value"][1]) > 0
        # --cpus 0.5: half a core, give or take what other processes on the host leave it
        rate = prom.wait_for(f"sum(rate(container_cpu_usage_seconds_total{sel}[5s])) > 0.3 < 0.7",
                             timeout=30)
        assert 0.3 < float(rate[0]["value"][1]) < 0.7
        ws = prom.wait_for(f"container_memory_working_set_bytes{sel}")
        assert 0 < float(ws[0]["value"][1]) < 64 << 20
        assert prom.wait_for("boxwatch_collector_samples_total > 0")
        assert prom.targets_health() == ["up"]
        names = {s["__name__"] for s in prom.series(sel)}
        assert {"container_last_seen", "container_start_time_seconds", "container_restarts_total",
                "container_oom_events_total", "container_memory_rss"} <= names


def test_collector_prometheus_promtool_and_both_paths_agree(box, burner) -> None:
    prom = PrometheusSink(("com.example.team",))
    pipeline = Pipeline(Discovery([box.root], "/sys/fs/cgroup", ("com.example.team",)), [prom])
    prom.self_metrics = pipeline.self_metrics
    try:
        pipeline.tick()
        text = prom.render()
        assert promtool_unexpected(text) == []
        registry = CollectorRegistry()
        registry.register(prom)
        generated = generate_latest(registry)
        assert promtool_unexpected(generated) == []
        assert text == cadvisor_types(generated)
        ours = _samples(text.decode())
        key = ("container_spec_memory_limit_bytes",
               frozenset({"id": f"/box/{burner}", "name": "burner", "image": "busybox",
                          "container_label_com_example_team": "db"}.items()))
        assert ours[key] == 64 << 20
    finally:
        pipeline.close()


# HELP strings as cAdvisor's lib/metrics/prometheus.go has them
CADVISOR_HELP = {
    "container_cpu_usage_seconds_total": "Cumulative cpu time consumed in seconds.",
    "container_cpu_cfs_throttled_periods_total": "Number of throttled period intervals.",
    "container_memory_working_set_bytes": "Current working set in bytes.",
    "container_memory_usage_bytes": "Current memory usage in bytes, including all memory "
    "regardless of when it was accessed",
    "container_spec_memory_limit_bytes": "Memory limit for the container.",
    "container_oom_events_total": "Count of out of memory events observed for the container",
    "container_fs_reads_bytes_total": "Cumulative count of bytes read",
    "container_network_receive_bytes_total": "Cumulative count of bytes received",
    "container_threads": "Number of threads running inside the container",
    "container_threads_max": "Maximum number of threads allowed inside the container, "
    "infinity if value is zero",
    "container_pressure_cpu_waiting_seconds_total": "Total time duration tasks in the "
    "container have waited due to CPU congestion.",
    "container_last_seen": "Last time a container was seen by the exporter",
    "container_start_time_seconds": "Start time of the container since unix epoch in seconds.",
}


def test_collector_prometheus_cadvisor_help_and_types(box, burner) -> None:
    cats = DEFAULT | {"process"}  # container_threads is cAdvisor's opt-in "process" group
    prom = PrometheusSink(categories=cats)
    pipeline = Pipeline(Discovery([box.root], "/sys/fs/cgroup"), [prom], categories=cats)
    try:
        pipeline.tick()
        text = prom.render().decode()
    finally:
        pipeline.close()
    for name, help_ in CADVISOR_HELP.items():
        assert f"# HELP {name} {help_}\n" in text
    assert "# TYPE container_cpu_usage_seconds_total counter\n" in text
    assert "# TYPE container_memory_working_set_bytes gauge\n" in text
    assert "# TYPE container_spec_cpu_shares gauge\n" in text


def test_collector_prometheus_label_names() -> None:
    assert sanitize("container_label_com.example/team-x") == "container_label_com_example_team_x"


def _synthetic(n: int) -> list[Sample]:
    """Samples that exercise every branch of the families: v1 and v2, quota or not,
    per-cpu, several devices and interfaces, PSI, awkward label values and numbers."""
    out = []
    for i in range(n):
        v2 = i % 2 == 1
        labels = {"team": 'a "quoted" \\ back\nslash', "com.example/x": f"ü{i}"} if i % 3 else {}
        ref = ContainerRef(f"{i:064x}", f"web-{i}" if i % 4 else "", "img:1" if i else "",
                           f"/box/{i:064x}", 2 if v2 else 1, {"memory": "/x"}, labels,
                           restart_count=i, started_at=1.7e9 + i / 3 if i % 5 else 0.0,
                           # a pod container (the kubelet's three labels) only in the
                           # first batch: the label set changes between scrapes
                           **({"pod": "web-7d9f8", "namespace": "shop", "container": "nginx"}
                              if i == 10 else {}))
        psi = PsiStats(Psi(PsiLine(0.5, 1.25, 0.0, 123456 + i)),
                       Psi(PsiLine(), PsiLine(2.0, 0.0, 0.0, 7)), None) if v2 else PsiStats()
        out.append(Sample(
            1_767_225_600_123_456_789 + i, ref,
            CpuStats(10**12 + 7 * i, 10**9 // 3, 123_456_789, (i, 0, 10**11 + i), 25, 3 * i,
                     10**10 // 7),
            MemoryStats(67_108_864 + i, 999_999 + i, 1, 10**15 + 1, 2**53 + 1, 0, i, 12_345, 1,
                        2**62, 5, 6, 7, i % 2),
            {"8:0": IoStats(4096 * i, 1, 2, 3), "254:16": IoStats(0, 10**7, 0, 1)} if i % 2 else {},
            {"eth0": NetStats(*range(i, i + 8)), "veth-x": NetStats()} if i % 3 != 2 else {},
            PidsStats(i, 100 if i % 2 else 0), psi,
            Spec(64 << 20 if i % 2 else 0, 0, 1 << 20, 50_000 if i % 3 else 0, 100_000, 1024,
                 "0-1", "0", 4096),
            LayerUsage("/dev/vda", 12_345 * i, 10**11) if i % 3 == 1 else None,
        ))
    return out


def cadvisor_types(generated: bytes) -> bytes:
    """prometheus_client cannot write a counter whose name lacks ``_total`` (it adds the
    suffix to HELP and TYPE), so ``collect()`` types cAdvisor's two such counters
    untyped; ``render()`` keeps cAdvisor's counter. Everything else is byte-for-byte."""
    for name in ("container_memory_failcnt", "container_hugetlb_failcnt"):
        generated = generated.replace(f"# TYPE {name} untyped\n".encode(),
                                      f"# TYPE {name} counter\n".encode())
    return generated


def _self_metrics() -> dict[str, object]:
    stats = SelfStats(samples_total=12, read_errors_total=1, gone_total=2, containers=7,
                      scan_duration_seconds=0.00123, read_duration_seconds=1.5e-05)
    return {"stats": stats,
            "sinks": {"influxdb-v1": {"written": 10.0, "write_errors": 0.0,
                                      "buffered_points": 3.0, "dropped_points": 0.0}}}


@pytest.mark.parametrize("per_cpu", [False, True])
def test_collector_prometheus_render_is_generate_latest_byte_for_byte(per_cpu: bool) -> None:
    """render() is a second serialiser of collect()'s families: it must write exactly
    what prometheus_client writes, scrape after scrape (label caches, value cache)."""
    prom = PrometheusSink(("team", "com.example/x"), per_cpu=per_cpu, self_metrics=_self_metrics)
    registry = CollectorRegistry()
    registry.register(prom)
    batch = _synthetic(12)
    for samples in (batch, batch[3:], _synthetic(5), []):
        prom.write(samples)
        text = prom.render()
        assert text == cadvisor_types(generate_latest(registry))
        # the kubelet's labels on every series once a pod container is there, else none
        assert ('pod="' in text.decode()) == any(s.ref.pod for s in samples)
    prom.write(batch)
    text = prom.render()
    assert 'container_label_team="a \\"quoted\\" \\\\ back\\nslash"' in text.decode()
    assert "container_memory_usage_bytes{" in text.decode()
    fs = {(sm.labels["id"], sm.labels["device"], sm.labels["pod"]): sm.value
          for fam in text_string_to_metric_families(text.decode())
          if fam.name == "container_fs_usage_bytes" for sm in fam.samples}
    assert fs[(f"/box/{1:064x}", "/dev/vda", "")] == 12_345  # the writable layer's size
    assert fs[(f"/box/{10:064x}", "/dev/vda", "web-7d9f8")] == 123_450
    assert 'container="nginx",' in text.decode() and 'namespace="shop",' in text.decode()
    assert promtool_unexpected(text) == []
