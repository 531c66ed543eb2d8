"""Container lifecycle events from the runtime's own journal (``formats.events``), for
the state roots that have one: written by the process that caused each event (box's
monitor and commands), with the time it happened, so nothing is inferred and nothing
between two scans is lost. Roots without a journal (a Docker node) keep the events
``collector.events`` derives from scans and samples; the pipeline asks ``covers`` which
source a container's events come from.

A journal there when the collector starts is read from its end (a restarted collector
does not report history again, as the scan tracker's baseline does not); one that
appears later is read from its start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from cgroupstats.model import ContainerRef
from collector.records import Event
from formats.events import Follower, journal_path

# journal action -> the collector's action; the others (create, kill, update, ...) are
# not lifecycle events of a running container and are left to `box events`
ACTIONS = {"start": "start", "restart": "restart", "die": "die", "oom": "oom_kill",
           "stop": "stop", "pause": "pause", "unpause": "unpause"}
KNOWN_MAX = 4096
# box's monitor journals ``oom`` for every kill as it happens (runtime.oomwatch), and the
# samples' memory.events counter sees kills too (monitors that predate the watcher, and
# the samples may see a kill first): a kill reported by one source is matched by the
# other's report within this window, and one pair is one event. Two kills journaled a
# moment apart are two events (each source is never matched against itself).
OOM_WINDOW_NS = 10 * 10**9
OOM_PENDING_MAX = 16  # per container: reports still waiting for the other source


class JournalSource:
    def __init__(self, roots: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = [os.fspath(r) for r in roots]
        self._followers: dict[str, Follower] = {}
        self._known: dict[str, ContainerRef] = {}  # id -> last ref seen, for who died
        # id -> oom_kill reports (source, time) the other source has not matched yet
        self._oom_pending: dict[str, list[tuple[str, int]]] = {}
        for root in self.roots:
            if _has_journal(root):
                follower = Follower(root)
                follower.skip_to_end()
                self._followers[root] = follower

    def covers_any(self) -> bool:
        return bool(self._followers)

    def covers(self, ref: ContainerRef) -> bool:
        """Whether ``ref``'s events come from a journal (its state file is under a root
        that has one)."""
        path = ref.state_file
        return bool(path) and any(path.startswith(root.rstrip("/") + "/")
                                  for root in self._followers)

    def poll(self, refs: Mapping[str, ContainerRef],
             ended: Iterable[ContainerRef] = ()) -> list[Event]:
        """The lifecycle events journaled since the last poll, oldest first; ``refs``
        (this scan's) and ``ended`` name the containers."""
        known = self._known
        known.update(refs)
        for ref in ended:
            known.setdefault(ref.id, ref)
        for root in self.roots:
            if root not in self._followers and _has_journal(root):
                self._followers[root] = Follower(root)
        events: list[Event] = []
        for follower in self._followers.values():
            for msg in follower.poll():
                event = self._event(msg)
                if event is not None:
                    events.append(event)
        if len(known) > KNOWN_MAX:  # bounded: forget the oldest names
            for cid in list(known)[:KNOWN_MAX // 4]:
                if cid not in refs:
                    del known[cid]
        return events

    def sampled(self, events: Iterable[Event]) -> list[Event]:
        """Of the events the samples showed: all of containers no journal covers, and the
        OOM kills of covered ones that the journal did not report already."""
        return [e for e in events if not self.covers(e.ref)
                or (e.action == "oom_kill"
                    and not self._seen_oom(e.ref.id, e.time_ns, "sample"))]

    def _seen_oom(self, cid: str, time_ns: int, source: str) -> bool:
        """Whether the other source reported this oom_kill of ``cid`` already (its oldest
        unmatched report within the window, which it consumes); else this one waits for
        the other source's."""
        pending = self._oom_pending.setdefault(cid, [])
        pending[:] = [p for p in pending if abs(time_ns - p[1]) < OOM_WINDOW_NS]
        for i, (src, _) in enumerate(pending):
            if src != source:
                del pending[i]
                return True
        pending.append((source, time_ns))
        del pending[:-OOM_PENDING_MAX]
        if len(self._oom_pending) > KNOWN_MAX:  # bounded: forget containers' old reports
            self._oom_pending = {cid: pending}
        return False

    def _event(self, msg: dict) -> Event | None:
        action = ACTIONS.get(msg["Action"])
        if msg["Type"] != "container" or action is None:
            return None
        if action == "oom_kill" and self._seen_oom(msg["Actor"]["ID"], msg["timeNano"],
                                                   "journal"):
            return None  # the samples reported it already
        actor = msg["Actor"]
        attrs = actor["Attributes"]
        ref = self._known.get(actor["ID"]) or ContainerRef(
            id=actor["ID"], name=attrs.get("name", ""), image=attrs.get("image", ""),
            cgroup="", cgroup_version=0, cgroup_paths={}, source="box")
        code = attrs.get("exitCode")
        exit_code = int(code) if action == "die" and code and code.lstrip("-").isdigit() \
            else None
        return Event(msg["timeNano"], ref, action, exit_code)

    def close(self) -> None:
        for follower in self._followers.values():
            follower.close()


def _has_journal(root: str) -> bool:
    path = journal_path(root)
    return os.path.isfile(path) or os.path.isfile(path + ".1")
