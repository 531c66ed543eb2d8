"""Where log records go: Loki, Elasticsearch, InfluxDB, a file. ``base`` holds the interface
(:class:`~shipper.sinks.base.Sink`, :class:`~shipper.sinks.base.Record`,
:class:`~shipper.sinks.base.Result`); the registry of sinks by kind is
``shipper.pipeline.SINKS``."""
