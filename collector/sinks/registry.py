"""The collector's sinks by kind: one way to build any of them,
``sink_class(kind).from_args(url, args)`` (the shipper's shape). A sink's module is
imported only when that kind is asked for."""

from __future__ import annotations

import importlib

from collector.sinks.base import Sink
from formats.delivery import SinkError

# name -> Sink class, or "module:Class" imported only when that sink is asked for.
SINKS: dict[str, type[Sink] | str] = {
    "prometheus": "collector.sinks.prometheus:PrometheusSink",
    "influxdb-v1": "collector.sinks.influx:InfluxV1Sink",
    "influxdb-v2": "collector.sinks.influx:InfluxV2Sink",
}


def sink_class(kind: str) -> type[Sink]:
    """The class registered under ``kind``; SinkError for an unknown or missing one."""
    entry = SINKS.get(kind)
    if entry is None:
        raise SinkError(kind, f"unknown sink kind (known: {', '.join(sorted(SINKS))})")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise SinkError(kind, f"cannot load {module}:{name}: {exc}") from None
    return entry
