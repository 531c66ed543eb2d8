"""``boxwatch logs``: search container logs in the central store the shipper writes to
(InfluxDB, Loki or Elasticsearch), from the terminal."""
