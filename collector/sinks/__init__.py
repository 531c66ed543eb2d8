"""Where samples go: Prometheus (``prometheus``, pulled), InfluxDB (``influx``: one sink,
v1 and v2 transports in ``influx_v1``/``influx_v2``, the sender thread in ``buffer``).
``base`` holds the interface; the registry by kind is ``collector.sinks.registry.SINKS``, and
every sink is built one way: ``sink_class(kind).from_args(url, args)``. Sinks import the
model (``cgroupstats.model``, ``collector.records``); nothing outside ``pipeline`` and
``cli`` imports a sink. Checklist for a new sink: see ``collector/__init__.py``."""
