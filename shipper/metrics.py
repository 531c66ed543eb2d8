"""The shipper's own metrics (``boxwatch_shipper_*``) on ``/metrics`` and its health on
``/healthz``, served by aiohttp on ``--listen`` (default 127.0.0.1:9181).

Counters are plain ints in the pipeline (the hot path never touches a metric object);
a custom collector turns them into fresh metric families at each scrape, as
prometheus_client recommends for state that lives elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from formats.listen import parse_listen
from shipper.pipeline import Shipper

DEFAULT_LISTEN = "127.0.0.1:9181"
P = "boxwatch_shipper_"


class ShipperCollector:
    """Reads a :class:`Shipper`'s state at scrape time."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def collect(self) -> Iterator[Metric]:
        sh = self.shipper
        reader = sh.reader
        lines, errors = reader.totals()
        yield CounterMetricFamily(P + "lines_read", "Log lines read from files", value=lines)
        yield CounterMetricFamily(P + "bytes_read", "Bytes read from log files",
                                  value=sh.bytes_read)
        yield CounterMetricFamily(P + "parse_errors", "Lines shipped raw because they did "
                                  "not parse (bad JSON/CRI, NUL padding, unknown stream)",
                                  value=errors)
        per_sink = {
            "shipped": "Records the sink acknowledged",
            "retried": "Records sent again after a failed or partial send",
            "rejected": "Records the sink refused for good (counted, not retried)",
            "send_errors": "send() calls that raised (retried)",
        }
        families = {k: CounterMetricFamily(P + k, h, labels=["sink"]) for k, h in per_sink.items()}
        for name, st in sh.stats.items():
            families["shipped"].add_metric([name], st.shipped)
            families["retried"].add_metric([name], st.retried)
            families["rejected"].add_metric([name], st.rejected)
            families["send_errors"].add_metric([name], st.errors)
        yield from families.values()
        yield CounterMetricFamily(P + "batches", "Batches acknowledged by every sink",
                                  value=sh.batches)
        yield CounterMetricFamily(P + "read_pauses", "Times reading paused for a full buffer",
                                  value=sh.paused)
        yield GaugeMetricFamily(P + "buffer_bytes", "Bytes read and not yet acknowledged",
                                value=sh.buffered)
        yield GaugeMetricFamily(P + "open_files", "Log files held open", value=reader.open_files)
        yield GaugeMetricFamily(P + "rotated_files_open", "Rotated files held open until "
                                "shipped", value=reader.rotated_open)
        yield GaugeMetricFamily(P + "rotated_files_max", "Bound on rotated files held open",
                                value=reader.opt.max_rotated_open)
        yield CounterMetricFamily(P + "rotated_files_dropped", "Rotated files given up "
                                  "because too many were held", value=reader.dropped_rotated)
        yield CounterMetricFamily(P + "dropped_bytes", "Bytes of rotated files given up unread",
                                  value=reader.dropped_bytes)
        yield GaugeMetricFamily(P + "registry_files", "Files in the offset registry",
                                value=len(sh.registry.entries))
        lag_b = GaugeMetricFamily(P + "lag_bytes", "Bytes written to a file and not yet "
                                  "acknowledged", labels=["path"])
        lag_s = GaugeMetricFamily(P + "lag_seconds", "Last write to a file minus the time of "
                                  "its last acknowledged entry", labels=["path"])
        for path, behind, secs in reader.lag():
            lag_b.add_metric([path], behind)
            lag_s.add_metric([path], secs)
        yield lag_b
        yield lag_s
        ok, _ = sh.healthy()
        yield GaugeMetricFamily(P + "healthy", "1 when the loop runs and no sink has been "
                                "failing for long", value=1 if ok else 0)
        yield GaugeMetricFamily(P + "uptime_seconds", "Seconds since start",
                                value=time.monotonic() - sh.started)


def make_app(shipper: Shipper) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShipperCollector(shipper))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz(request: web.Request) -> web.Response:
        ok, why = shipper.healthy()
        return web.json_response({"status": "ok" if ok else "failing", "reason": why,
                                  "open_files": shipper.reader.open_files,
                                  "buffer_bytes": shipper.buffered},
                                 status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(shipper: Shipper, listen: str) -> web.AppRunner:
    """Start the HTTP server; the caller cleans up the runner."""
    host, port = parse_listen(listen)
    runner = web.AppRunner(make_app(shipper), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
