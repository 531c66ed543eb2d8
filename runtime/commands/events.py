"""``box events``: docker's event stream, read from the journal the runtime writes
(``formats.events``). Without ``--until`` it streams until SIGINT/SIGTERM (exit 0, as
docker does); with ``--until`` it replays the window (following until then when the
window reaches into the future) and exits. Filters are moby's (daemon/events/filter.go).
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

from runtime.errors import BoxError, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

_FUZZY_EVENTS = ("health_status", "exec_create", "exec_start")


class Actor:
    """``.Actor`` of a template: ``.ID`` and ``.Attributes``."""

    def __init__(self, actor: dict[str, Any]) -> None:
        self.ID = actor.get("ID", "")
        self.Attributes = actor.get("Attributes") or {}


class Message:
    """An event as docker's ``--format`` templates see it (``events.Message``'s fields);
    ``{{json .}}`` prints the journaled object itself."""

    def __init__(self, msg: dict[str, Any]) -> None:
        self._msg = msg
        self.Status = msg.get("status", "")
        self.ID = msg.get("id", "")
        self.From = msg.get("from", "")
        self.Type = msg["Type"]
        self.Action = msg["Action"]
        self.Actor = Actor(msg["Actor"])
        self.Scope = msg.get("scope", "local")
        self.Time = msg.get("time", 0)
        self.TimeNano = msg["timeNano"]

    def __json__(self) -> dict[str, Any]:
        return self._msg


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        if not item:
            continue  # docker/cli: an empty --filter is no filter
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {item}")
        # docker/cli's FilterOpt; moby's events route validates no key (unlike the
        # list and prune routes): one it does not know is ignored
        filters.setdefault(key.strip().lower(), []).append(value.strip())
    return filters


def _exact(values: list[str] | None, *sources: str) -> bool:
    return not values or any(s in values for s in sources)


def _fuzzy(values: list[str] | None, *sources: str) -> bool:
    return not values or any(s == v or s.startswith(v) for v in values for s in sources if s)


def _strip_tag(ref: str) -> str:
    name, _, tag = ref.rpartition(":")
    return name if name and "/" not in tag else ref


def matches(msg: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """moby's Filter.Include."""
    kind, action = msg["Type"], msg["Action"]
    actor_id = msg["Actor"]["ID"]
    attrs = msg["Actor"]["Attributes"]
    name = attrs.get("name", "")
    events = filters.get("event")
    if events and any(e in _FUZZY_EVENTS for e in events):
        if not _fuzzy(events, action):
            return False
    elif not _exact(events, action):
        return False
    if not _exact(filters.get("type"), kind) or not _exact(filters.get("scope"), "local"):
        return False
    # moby's fuzzyMatchName: the actor's id or name attribute, whatever the event's type
    for key in ("container", "network", "volume", "plugin", "node", "service", "secret",
                "config", "daemon"):
        if not _fuzzy(filters.get(key), actor_id, name):
            return False
    image_name = attrs.get("name" if kind == "image" else "image", "")
    if not _exact(filters.get("image"), actor_id, image_name, _strip_tag(actor_id),
                  _strip_tag(image_name)):
        return False
    for label in filters.get("label") or ():
        key, sep, value = label.partition("=")
        if key not in attrs or (sep and attrs[key] != value):
            return False
    return True


def pretty(msg: dict[str, Any]) -> str:
    """docker/cli's prettyPrintEvent: RFC3339NanoFixed time, type, action, actor id and
    the sorted attributes."""
    ns = msg["timeNano"]
    secs, frac = divmod(ns, 1_000_000_000)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"
    line = f"{when} {msg['Type']} {msg['Action']} {msg['Actor']['ID']}"
    attrs = msg["Actor"]["Attributes"]
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def add_events(p: FlagParser) -> None:
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output based on conditions provided")
    p.add_argument("--format", help="Format output using a custom template: 'json' or a "
                   "Go TEMPLATE")


def _time(value: str | None, now_ns: int) -> int | None:
    from runtime.timeutil import docker_timestamp

    if value is None:
        return None
    try:
        return docker_timestamp(value, now_ns)
    except ValueError as e:
        raise BoxError(str(e), 125) from None


def cmd_events(paths: Paths, args: Namespace) -> int:
    now = time.time_ns()
    try:
        filters = parse_filters(args.filter)
        since = _time(args.since, now)
        until = _time(args.until, now)
    except BoxError as e:  # refused before anything is read: one line, docker's code
        e.command_exit = True  # 125 for what the CLI refuses, 1 for the daemon's refusal
        raise
    if until is not None and since is not None and until < since:
        raise BoxError(f"Error response from daemon: `since` time ({args.since}) cannot be "
                       f"after `until` time ({args.until})")
    render = _renderer(args.format)
    stopping = []

    def stop(_sig: int, _frame: object) -> None:
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from formats.events import follow, replay

    if until is not None and until <= time.time_ns():
        stream = replay(paths.root, since or 0, until)
    else:
        def done() -> bool:
            return bool(stopping) or (until is not None and time.time_ns() > until)
        stream = follow(paths.root, since, done)
    out = sys.stdout
    for msg in stream:
        if until is not None and msg["timeNano"] > until:
            break
        if matches(msg, filters):
            out.write(render(msg))
            out.flush()
    return 0


def _renderer(fmt: str | None) -> Any:
    if not fmt:
        return pretty
    if fmt.strip() in ("{{json .}}", "json"):  # docker/cli: 'json' is {{json .}}
        import json

        return lambda msg: json.dumps(msg, separators=(",", ":")) + "\n"
    from runtime.format import compile_template

    template = compile_template(fmt)
    return lambda msg: template.render(Message(msg)) + "\n"
