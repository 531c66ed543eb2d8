"""Families that are not per-sample: ``container_state_running`` and
``container_state_paused`` (ours, from discovery)
and the collector's own ``boxwatch_collector_*``."""

from __future__ import annotations

from collector.metrics.base import Family

# One series per container whose state file says running, from discovery rather than
# from a sample, so it stays while the cgroup cannot be read and
# ``container_state_running unless container_last_seen`` finds a running but silent one.
# Its ``get`` takes the ContainerRef (there may be no Sample).
STATE_FAMILY = Family(
    "container_state_running", "gauge",
    "1 while the container's state file says it is running, whether or not it can be sampled.",
    (), lambda ref: 1.0,
)

# Ours too: 1 while the state file says the container is paused (frozen by `box pause` /
# `docker pause`), 0 for the other running ones; beside container_state_running.
PAUSED_FAMILY = Family(
    "container_state_paused", "gauge",
    "1 while the container's state file says it is paused (frozen), 0 while it runs.",
    (), lambda ref: 1.0 if ref.paused else 0.0,
)

# boxwatch_collector_*: (name, type, help, SelfStats attribute)
SELF_METRICS = (
    ("boxwatch_collector_samples_total", "counter", "Container samples taken.", "samples_total"),
    ("boxwatch_collector_read_errors_total", "counter",
     "Container reads that failed with a parse or OS error.", "read_errors_total"),
    ("boxwatch_collector_gone_total", "counter",
     "Container groups that vanished between discovery and read (skipped, not errors).",
     "gone_total"),
    ("boxwatch_collector_containers", "gauge", "Containers being sampled.", "containers"),
    ("boxwatch_collector_scan_duration_seconds", "gauge",
     "Duration of the last discovery scan.", "scan_duration_seconds"),
    ("boxwatch_collector_read_duration_seconds", "gauge",
     "Duration of reading every container in the last interval.", "read_duration_seconds"),
)
# per sink: (name, type, help, health() key)
SINK_METRICS = (
    ("boxwatch_collector_sink_written_total", "counter", "Points the sink delivered.", "written"),
    ("boxwatch_collector_sink_write_errors_total", "counter", "Failed writes of the sink.",
     "write_errors"),
    ("boxwatch_collector_sink_buffered_points", "gauge",
     "Points held by the sink waiting for delivery.", "buffered_points"),
    ("boxwatch_collector_sink_dropped_points_total", "counter",
     "Points dropped because the sink's buffer was full.", "dropped_points"),
)
