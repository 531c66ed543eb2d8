"""Container events (start, stop, die, oom_kill, restart) derived by comparing one scan and
one sample with the last, as ``docker events`` would report them. How a container ended
comes from its config.v2.json ``State``.

A container's OOM-kill counter starts at 0 in a group made after the collector started,
so a container new to a scan is baselined at 0: a kill that happened before its first
sample (its group still there, Docker not yet told) is still an ``oom_kill``. A container
that started and died between two scans is never in a scan at all; discovery hands over
its ending from the state file (``Discovery.exited``) and it gets its die/oom_kill once.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from cgroupstats.model import ContainerRef, Sample
from collector.records import Event


class EventTracker:
    """Turns consecutive scans and samples into container events.

    The first scan only sets the baseline (a restarted collector does not report every
    running container as started).
    """

    def __init__(self) -> None:
        self._refs: dict[str, ContainerRef] | None = None
        self._oom: dict[str, int] = {}
        # ended containers, so one that comes back by its restart policy is a "restart"
        self._ended: dict[str, ContainerRef] = {}

    def scanned(self, refs: dict[str, ContainerRef], now_ns: int,
                exited: Iterable[ContainerRef] = ()) -> list[Event]:
        """Events between the last scan and this one. ``exited``: containers whose state
        file now says they ended (after the collector started); those never seen running
        get their die (and oom_kill) here."""
        prev, self._refs = self._refs, refs
        events: list[Event] = []
        if prev is not None:
            self._compare(prev, refs, now_ns, events)
        for ref in exited:
            if ref.id in refs or (prev is not None and ref.id in prev):
                continue  # running again, or ended above from the scan it was in
            events.extend(self._end(ref, now_ns))
            self._oom.pop(ref.id, None)
            self._ended[ref.id] = ref
        if len(self._ended) > 4096:  # bounded: forget the oldest endings
            for cid in list(self._ended)[:1024]:
                del self._ended[cid]
        return events

    def _compare(self, prev: dict[str, ContainerRef], refs: dict[str, ContainerRef],
                 now_ns: int, events: list[Event]) -> None:
        for cid, ref in refs.items():
            old = prev.get(cid)
            if old is None:
                old = self._ended.pop(cid, None)
                back = old is not None and ref.restart_count > old.restart_count
                events.append(Event(now_ns, ref, "restart" if back else "start"))
                self._oom[cid] = 0  # a new group: every kill it counts is news
            elif old is not ref:
                if ref.restart_count > old.restart_count:
                    events.append(Event(now_ns, ref, "restart"))
                    self._oom[cid] = 0
                elif ref.started_at != old.started_at and ref.started_at:
                    events.append(Event(now_ns, ref, "start"))
                    self._oom[cid] = 0
        for cid, old in prev.items():
            if cid not in refs:
                events.extend(self._end(old, now_ns))
                self._oom.pop(cid, None)
                self._ended[cid] = old

    def _end(self, ref: ContainerRef, now_ns: int) -> list[Event]:
        """die with the exit code when the state file says it exited; stop otherwise."""
        state = read_state(ref.state_file)
        if state is None or state.get("Running"):
            return [Event(now_ns, ref, "stop")]
        events = []
        if state.get("OOMKilled") and self._oom.get(ref.id, 0) == 0:
            events.append(Event(now_ns, ref, "oom_kill"))  # killed before a sample saw it
        code = state.get("ExitCode")
        events.append(Event(now_ns, ref, "die", code if isinstance(code, int) else None))
        return events

    def sampled(self, samples: Iterable[Sample]) -> list[Event]:
        events: list[Event] = []
        oom = self._oom
        for s in samples:
            kills = s.memory.events_oom_kill
            before = oom.get(s.ref.id)
            if before is not None and kills > before:
                events.append(Event(s.timestamp_ns, s.ref, "oom_kill"))
            oom[s.ref.id] = kills
        return events


def read_state(path: str) -> dict | None:
    """The ``State`` object of a config.v2.json, None when absent or unreadable."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            state = orjson.loads(f.read()).get("State")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return state if isinstance(state, dict) else None
