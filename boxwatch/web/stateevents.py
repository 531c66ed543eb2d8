"""Health events of a local container, read from its state file, and the feed of events
an open container page receives over its Server-Sent Events stream.

Why the state file: the collector records start, die, oom_kill and restart in the store
(``container_events``), but a healthcheck's result lives only in ``State.Health`` of
``config.v2.json`` (``Status``, ``FailingStreak`` and the last five probes in ``Log``).
The probes are replayed with moby's rule (a pass is healthy; ``Retries`` failures in a
row are unhealthy) and every change of status inside the log's window is one event,
``health_status: healthy`` or ``health_status: unhealthy`` (docker's event names), at the
end of the probe that caused it. The streak before the window is known from
``FailingStreak``, so a container unhealthy for long gets no event at each window slide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from formats import statefile
from formats.units import parse_rfc3339

DEFAULT_RETRIES = 3


def health_events(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The health status changes within ``State.Health.Log``, oldest first:
    ``{t, action, exit_code}`` (``t`` in seconds)."""
    health = statefile.state(doc).get("Health")
    if not isinstance(health, dict):
        return []
    log = [p for p in health.get("Log") or [] if isinstance(p, dict)]
    check = (doc.get("Config") or {}).get("Healthcheck") or {}
    retries = int(check.get("Retries") or DEFAULT_RETRIES)
    trailing = 0
    for probe in reversed(log):
        if probe.get("ExitCode") == 0:
            break
        trailing += 1
    streak = max(0, int(health.get("FailingStreak") or 0) - len(log)) if trailing == len(
        log) else 0
    status = "unhealthy" if streak >= retries else ""
    out = []
    for i, probe in enumerate(log):
        try:
            t = parse_rfc3339(str(probe.get("End") or probe.get("Start"))) / 1e9
        except ValueError:
            continue
        code = probe.get("ExitCode")
        if code == 0:
            streak = 0
            if status == "unhealthy":
                out.append({"t": t, "action": "health_status: healthy", "exit_code": 0})
            status = "healthy"
        else:
            streak += 1
            if streak >= retries and status != "unhealthy":
                if i > 0 or status:  # a first probe failing: its status before is unknown
                    out.append({"t": t, "action": "health_status: unhealthy",
                                "exit_code": code})
                status = "unhealthy"
    return out


def read_health(root: str, cid: str) -> list[dict[str, Any]]:
    """``health_events`` of the container ``cid`` under the state root ``root``."""
    path = Path(root) / statefile.CONTAINERS / cid / statefile.CONFIG
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    return health_events(doc) if isinstance(doc, dict) else []


def key(event: dict[str, Any]) -> tuple[float, str]:
    return (round(float(event["t"]), 3), str(event["action"]))


class Feed:
    """What a page has been sent: each new event goes out once."""

    def __init__(self) -> None:
        self.sent: set[tuple[float, str]] = set()

    def new(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fresh = [e for e in events if key(e) not in self.sent]
        self.sent.update(key(e) for e in fresh)
        return sorted(fresh, key=lambda e: e["t"])
