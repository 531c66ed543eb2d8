"""InfluxDB 1.x (``influxd``) for the local stack and the tests: its config file, the
admin user and the databases with their retention policy. One implementation for both, so
the tests run the server exactly as ``boxwatch up`` does.

The stack runs influxd with ``auth-enabled``. While a server has no user, 1.x refuses
every statement but the creation of an admin (403 "create admin user first"), so the first
start creates the stack's admin with the password of its credentials file; once it exists
every request needs it (401 without). Errors never carry the password."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from formats.delivery import basic_auth, redact
from formats.influx import quote_ident

Auth = tuple[str, str]  # (user, password)
INFLUXD = "/usr/bin/influxd"
RP_NAME = "boxwatch"


def config_text(workdir: Path | str, port: int, rpc_port: int, auth: bool = True,
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


class InfluxInitError(Exception):
    """A statement InfluxDB refused while creating users or databases; carries its message
    and the HTTP status (0 for an error inside a 200 answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def query(url: str, statement: str, db: str = "", timeout: float = 10.0,
          auth: Auth | None = None) -> list[dict]:
    """One InfluxQL statement (POST, so DDL works; the statement travels in the body, not
    the URL) as ``auth``'s user; its ``series``; InfluxInitError with InfluxDB's message
    (the password redacted) when it answers an error."""
    params = {"q": statement, "epoch": "ns"}
    if db:
        params["db"] = db
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if auth:
        headers["Authorization"] = basic_auth(*auth)
    hide = [auth[1]] if auth else []
    req = urllib.request.Request(url + "/query", method="POST",
                                 data=urllib.parse.urlencode(params).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise InfluxInitError(redact(f"{statement}: HTTP {exc.code} {exc.read()[:300]!r}", hide),
                              exc.code) from None
    result = (doc.get("results") or [{}])[0]
    if "error" in result:
        raise InfluxInitError(redact(f"{statement}: {result['error']}", hide))
    return result.get("series", [])


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_admin(url: str, auth: Auth, source: str = "the credentials file") -> bool:
    """The admin ``auth`` names exists on the server at ``url``: created when the server
    has no user yet (True), else checked to work (False). InfluxInitError when the server
    has users but ``auth`` is not one of them, or when someone else's admin appeared
    first (a local user racing the first start: refused rather than trusted)."""
    user, password = auth
    try:
        query(url, "SHOW USERS", auth=auth)
        return False
    except InfluxInitError as exc:
        if exc.status == 401:
            raise InfluxInitError(f"InfluxDB at {url} has users, and the user and password in "
                                  f"{source} are not one of them; restore that file (or remove "
                                  "the server's meta/ dir to start over)", 401) from None
        if exc.status != 403 or "create admin user first" not in str(exc):
            raise  # e.g. 403 for a user without admin rights: InfluxDB's message says so
    try:
        query(url, f"CREATE USER {quote_ident(user)} WITH PASSWORD {_string(password)} "
                   "WITH ALL PRIVILEGES")
    except InfluxInitError as exc:  # its message holds the statement, so the password
        raise InfluxInitError(f"InfluxDB at {url} refused creating the admin user {user!r} "
                              f"(HTTP {exc.status}): another admin appeared first; not trusted",
                              exc.status) from None
    users = [row[0] for s in query(url, "SHOW USERS", auth=auth) for row in s.get("values", [])]
    if users != [user]:
        raise InfluxInitError(f"InfluxDB at {url} has users besides {user!r} right after its "
                              f"first start: {users}; someone else created them, not trusted")
    return True


def create_databases(url: str, names: list[str], retention: str,
                     auth: Auth | None = None) -> None:
    """Each database with a default retention policy ``boxwatch`` of ``retention``;
    idempotent (an existing policy is altered to the configured duration)."""
    for db in names:
        query(url, f'CREATE DATABASE "{db}"', auth=auth)
        try:
            query(url, f'CREATE RETENTION POLICY "{RP_NAME}" ON "{db}" DURATION {retention} '
                       "REPLICATION 1 DEFAULT", auth=auth)
        except InfluxInitError as exc:
            if "already exists" not in str(exc):
                raise
            query(url, f'ALTER RETENTION POLICY "{RP_NAME}" ON "{db}" DURATION {retention} '
                       "DEFAULT", auth=auth)
