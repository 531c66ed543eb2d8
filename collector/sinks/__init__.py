"""Where samples go: Prometheus, InfluxDB (v1 and v2), events. ``base`` holds the interface;
the registry of sinks by name is ``collector.pipeline.SINKS``."""
