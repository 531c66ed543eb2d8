"""InfluxDB 1.x (``influxd``) for the local stack and the tests: its config file and the
databases with their retention policy. One implementation for both, so the tests run the
server exactly as ``boxwatch up`` does."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

INFLUXD = "/usr/bin/influxd"
RP_NAME = "boxwatch"


class InfluxInitError(Exception):
    """A statement InfluxDB refused while creating databases; carries its message."""


def config_text(workdir: Path | str, port: int, rpc_port: int, auth: bool = False,
                host: str = "127.0.0.1") -> str:
    """A minimal influxdb.conf: http and rpc on ``host``, data under ``workdir``; no
    reporting, no graphite/udp/collectd/opentsdb, no _internal monitor database, no
    query or http request logs (they would fill the log with every write)."""
    return f"""reporting-disabled = true
bind-address = "{host}:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "{host}:{port}"
  auth-enabled = {"true" if auth else "false"}
  log-enabled = false
[continuous_queries]
  enabled = false
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
"""


def argv(config: Path | str, binary: str = INFLUXD) -> list[str]:
    return [binary, "run", "-config", str(config)]


def query(url: str, statement: str, db: str = "", timeout: float = 10.0) -> list[dict]:
    """One InfluxQL statement (POST, so DDL works); its ``series``; InfluxInitError with
    InfluxDB's message when it answers an error."""
    params = {"q": statement, "epoch": "ns"}
    if db:
        params["db"] = db
    req = urllib.request.Request(url + "/query", method="POST",
                                 data=urllib.parse.urlencode(params).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise InfluxInitError(f"{statement}: HTTP {exc.code} {exc.read()[:300]!r}") from None
    result = (doc.get("results") or [{}])[0]
    if "error" in result:
        raise InfluxInitError(f"{statement}: {result['error']}")
    return result.get("series", [])


def create_databases(url: str, names: list[str], retention: str) -> None:
    """Each database with a default retention policy ``boxwatch`` of ``retention``;
    idempotent (an existing policy is altered to the configured duration)."""
    for db in names:
        query(url, f'CREATE DATABASE "{db}"')
        try:
            query(url, f'CREATE RETENTION POLICY "{RP_NAME}" ON "{db}" DURATION {retention} '
                       "REPLICATION 1 DEFAULT")
        except InfluxInitError as exc:
            if "already exists" not in str(exc):
                raise
            query(url, f'ALTER RETENTION POLICY "{RP_NAME}" ON "{db}" DURATION {retention} DEFAULT')
