#!/bin/sh
# Runs once, after the influxdb image's initial setup (org, admin, token, bucket boxwatch):
# the "logs" bucket the shipper writes to, and an InfluxQL (v1 API) user for Grafana with
# read access to both buckets. InfluxDB 2.2+ maps each bucket to a v1 database of its name.
set -eu
influx bucket create --name logs --org "$DOCKER_INFLUXDB_INIT_ORG" \
  --retention "$DOCKER_INFLUXDB_INIT_RETENTION"
metrics=$(influx bucket list --name boxwatch --org "$DOCKER_INFLUXDB_INIT_ORG" --hide-headers | cut -f1)
logs=$(influx bucket list --name logs --org "$DOCKER_INFLUXDB_INIT_ORG" --hide-headers | cut -f1)
influx v1 auth create --org "$DOCKER_INFLUXDB_INIT_ORG" --username "$INFLUX_V1_USER" \
  --password "$INFLUX_V1_PASSWORD" --read-bucket "$metrics" --read-bucket "$logs"
