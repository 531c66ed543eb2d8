"""Delivering OOM alerts: the alert, its request body (Alertmanager's v2 ``postableAlerts``
when the URL ends with ``/api/v2/alerts``, else a plain JSON document) and the sender
thread that POSTs each one, retrying a few times, so a slow receiver never delays the
watcher (``collector.alerts``) noticing the next kill.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from cgroupstats.model import ContainerRef
from formats.delivery import basic_auth

ALERTMANAGER_SUFFIX = "/api/v2/alerts"


class AlertError(Exception):
    """A webhook URL that cannot be used, or a receiver that refused the alert."""

    def __init__(self, what: str, value: object) -> None:
        super().__init__(f"{what}: {value!r}")
        self.value = value


@dataclass(frozen=True, slots=True)
class OomAlert:
    """One OOM kill, as sent."""

    time_ns: int
    ref: ContainerRef
    host: str
    oom_kills: int  # the group's counter after this kill
    memory_limit: int  # bytes, 0 = unlimited
    memory_peak: int  # bytes (v1 max_usage_in_bytes, v2 memory.peak), 0 = unknown
    logs: list[dict[str, str]] = field(default_factory=list)  # oldest first


def _rfc3339(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z")


def payload(alert: OomAlert, alertmanager: bool) -> bytes:
    """The request body: Alertmanager's v2 ``postableAlerts`` or a plain JSON document."""
    ref = alert.ref
    name = ref.name or ref.id[:12]
    limit_mib = alert.memory_limit / 2**20
    peak_mib = alert.memory_peak / 2**20
    summary = f"Container {name} was OOM-killed"
    description = (f"Container {name} ({ref.image}) on {alert.host} was killed by the kernel's "
                   f"OOM killer: peak memory {peak_mib:.1f} MiB of its {limit_mib:.1f} MiB limit "
                   f"(OOM kills so far: {alert.oom_kills}).")
    if alertmanager:
        logs = "\n".join(f"{e['time']} {e['stream']}: {e['log']}" for e in alert.logs)
        doc: object = [{
            "labels": {"alertname": "ContainerOOMKilled", "severity": "critical",
                       "source": "boxwatch-collector", "host": alert.host,
                       "container_name": name, "container_id": ref.id, "image": ref.image},
            "annotations": {"summary": summary, "description": description, "logs": logs,
                            "memory_limit_bytes": str(alert.memory_limit),
                            "memory_peak_bytes": str(alert.memory_peak)},
            "startsAt": _rfc3339(alert.time_ns),
        }]
    else:
        doc = {
            "alert": "oom_kill", "summary": summary, "description": description,
            "time": _rfc3339(alert.time_ns), "time_ns": alert.time_ns, "host": alert.host,
            "container": {"name": name, "id": ref.id, "image": ref.image, "cgroup": ref.cgroup},
            "memory_limit_bytes": alert.memory_limit, "memory_peak_bytes": alert.memory_peak,
            "oom_kills": alert.oom_kills, "logs": alert.logs,
        }
    return orjson.dumps(doc)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``xxxxx``: the form every log line shows."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:xxxxx@{parsed.netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def check_url(url: str) -> str:
    """An http(s) URL with a host, or AlertError (naming the URL redacted)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.hostname)
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise AlertError("--alert-webhook wants an http(s) URL", redact(url))
    return url


def split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without user:password, its ``Authorization: Basic`` value or None):
    urllib would take ``user:pass@host`` for a host name."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is None:
        return url, None
    user = urllib.parse.unquote(parsed.username)
    password = urllib.parse.unquote(parsed.password or "")
    bare = urllib.parse.urlunsplit(parsed._replace(netloc=parsed.netloc.rpartition("@")[2]))
    return bare, basic_auth(user, password)


class Sender:
    """POSTs queued alerts in its own thread, retrying a failed one a few times."""

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 3,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.url, self._authorization = split_credentials(check_url(url))
        self.alertmanager = url.rstrip("/").endswith(ALERTMANAGER_SUFFIX)
        self.timeout = timeout
        self.retries = retries
        self.sent = 0
        self.errors = 0
        self._on_error = on_error or (lambda msg: None)
        self._queue: queue.Queue[OomAlert | None] = queue.Queue(maxsize=1024)
        self._thread = threading.Thread(target=self._run, name="boxwatch-alert-sender",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, alert: OomAlert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.errors += 1
            self._on_error(f"collector: alert queue full, OOM alert for {alert.ref.name} dropped")

    def post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        req = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise AlertError(f"webhook answered {exc.code}", exc.read(200)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise AlertError("webhook unreachable", str(exc)) from None

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            try:
                self._deliver(alert)
            except Exception as exc:
                self.errors += 1
                self._on_error(f"collector: OOM alert for {alert.ref.name}: "
                               f"{type(exc).__name__}: {exc}")

    def _deliver(self, alert: OomAlert) -> None:
        body = payload(alert, self.alertmanager)
        for attempt in range(self.retries + 1):
            try:
                self.post(body)
                self.sent += 1
                break
            except AlertError as exc:
                if attempt == self.retries:
                    self.errors += 1
                    self._on_error(f"collector: OOM alert for {alert.ref.name}: {exc}")
                else:
                    time.sleep(0.2 * 2**attempt)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
