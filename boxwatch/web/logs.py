"""The logs view: stored history that runs on into the live tail, without a gap or a
duplicate, for one or several containers merged by time.

How the seam is exact: the live tail reads the container's json-file from a position
(``tail.Tail``). On load we open the file ``WINDOW`` bytes before its end; the first entry
there sets the cutoff. Entries before the cutoff come from the store (what ``boxwatch
logs`` searches, up to ``cutoff - 1``), entries from the cutoff on come from the file, so
none is in both and none in neither (as long as the shipper is less than a window
behind). The answer carries a cursor (every container's file position); the live stream
(Server-Sent Events) starts there, and every event's ``id:`` is the cursor just after it,
so a reconnect with ``Last-Event-ID`` resumes at exactly the next entry, even from another
server process or after the file rotated.

Containers on other hosts (``c=NAME@HOST``, or a ``NAME`` this host does not run) exist
here only in the store: their history ends at the store tail's watermark and their live
part polls the store from there (``storetail``); their cursor part is ``s<i>:<t>:<n>``.
A local container's history asks the store for this host's entries only, so containers
of the same name on other hosts stay out of it."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from boxwatch.logs.query import LogEntry, LogStore, LogStoreError, Match, QueryError
from boxwatch.logs.query import parse_time as parse_since
from boxwatch.web.storetail import POLL as STORE_POLL
from boxwatch.web.storetail import Selection, StoreTail, watermark
from boxwatch.web.tail import Line, LocalContainer, Tail, find_local

WINDOW = 256 * 1024
POLL = 0.1
KEEPALIVE = 15.0


@dataclass(frozen=True)
class Filters:
    names: tuple[str, ...]
    stream: str | None
    grep: str | None
    since_ns: int | None
    limit: int

    @classmethod
    def parse(cls, query: Any) -> Filters:
        names = tuple(dict.fromkeys(n for n in query.getall("c", []) if n))
        if not names:
            raise QueryError("c (a container) is required", "")
        for n in names:
            if n.startswith("@") or n.endswith("@"):
                raise QueryError("c must be NAME or NAME@HOST", n)
        stream = query.get("stream") or None
        if stream not in (None, "stdout", "stderr"):
            raise QueryError("stream must be stdout or stderr", stream)
        grep = query.get("grep") or None
        if grep is not None:
            Match.parse(grep, "grep")  # QueryError for a bad regex
        since = query.get("since", "1h")
        limit = query.get("limit", "1000")
        if not limit.isdigit():
            raise QueryError("limit must be a number", limit)
        return cls(names, stream, grep, None if since == "all" else parse_since(since),
                   int(limit))

    def accepts(self, stream: str, message: str) -> bool:
        return ((self.stream is None or stream == self.stream)
                and (self.grep is None or re.search(self.grep, message) is not None))


def encode_cursor(positions: dict[str, tuple[int, int]]) -> str:
    return ",".join(f"{cid[:16]}:{ino}:{off}" for cid, (ino, off) in sorted(positions.items()))


def decode_cursor(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for part in filter(None, text.split(",")):
        cid, _, rest = part.partition(":")
        ino, _, off = rest.partition(":")
        if ino.isdigit() and off.isdigit():
            out[cid] = (int(ino), int(off))
    return out


def _entry(label: str, line: Line | LogEntry, remote: bool = False) -> dict[str, Any]:
    if isinstance(line, Line):
        return {"t": line.time_ns, "c": label, "s": line.stream, "m": line.message}
    c = f"{line.container}@{line.host}" if remote and line.host else label
    return {"t": line.time_ns, "c": c, "s": line.stream, "m": line.message, "h": line.host}


@dataclass(frozen=True)
class Source:
    """One ``c=`` of the view: a local container (its json-file) or a selection of the
    store's (another host's container)."""

    label: str
    sel: Selection
    local: LocalContainer | None
    key: str  # its part of the cursor


class LogsView:
    def __init__(self, store: LogStore | None, roots: list[str], host: str = "") -> None:
        self.store = store
        self.roots = roots
        self.host = host

    def resolve(self, names: tuple[str, ...]) -> list[Source]:
        """``NAME`` is this host's container when it runs here, else NAME on any host in
        the store; ``NAME@HOST`` is that host's."""
        out = []
        for i, raw in enumerate(names):
            name, _, host = raw.rpartition("@") if "@" in raw else (raw, "", "")
            local = (find_local(self.roots, name) if host in ("", self.host) else None)
            if local is not None:
                if all(s.key != local.id[:16] for s in out):  # web and web@here: once
                    out.append(Source(name, Selection(name, self.host), local, local.id[:16]))
            else:
                out.append(Source(raw, Selection(name, host), None, f"s{i}"))
        return out

    async def history(self, request: web.Request) -> web.Response:
        """``?c=NAME&c=...&stream=&grep=&since=1h&limit=1000`` -> entries, cursor, errors."""
        try:
            f = Filters.parse(request.query)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        sources = self.resolve(f.names)
        now = time.time_ns()
        entries: list[dict[str, Any]] = []
        errors: list[str] = []
        positions: dict[str, tuple[int, int]] = {}
        untils: dict[str, int] = {}
        for src in sources:
            if src.local is None:
                untils[src.key] = watermark(now)
                positions[src.key] = (untils[src.key] + 1, 0)
                continue
            tail = Tail(src.local.log_path, back_bytes=WINDOW)
            lines = tail.read()
            positions[src.key] = tail.position
            tail.close()
            untils[src.key] = (lines[0].time_ns if lines else now) - 1
            entries += [_entry(src.label, ln) for ln in lines
                        if f.accepts(ln.stream, ln.message)
                        and (f.since_ns is None or ln.time_ns >= f.since_ns)]
        stored = await asyncio.get_running_loop().run_in_executor(
            None, self._search, f, sources, untils, errors)
        entries += stored
        entries.sort(key=lambda e: e["t"])
        if f.limit:
            entries = entries[-f.limit:]
        remote = [s.label for s in sources if s.local is None]
        if remote and self.store is not None:
            errors.append(f"{', '.join(remote)}: not on this host; live from the log store "
                          f"(a few seconds behind)")
        body = {"entries": entries, "cursor": encode_cursor(positions), "errors": errors,
                "local": sorted(s.label for s in sources if s.local is not None)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _search(self, f: Filters, sources: list[Source], untils: dict[str, int],
                errors: list[str]) -> list[dict]:
        if self.store is None:
            errors.append("log store not configured: only what the log files still hold")
            return []
        out: list[dict[str, Any]] = []
        for src in sources:
            q = src.sel.query(f.stream, f.grep, f.since_ns, untils[src.key], f.limit)
            try:
                out += [_entry(src.label, e, src.local is None) for e in self.store.search(q)]
            except LogStoreError as exc:
                errors.append(f"log store unavailable: {exc}")
                break
        return out

    async def live(self, request: web.Request) -> web.StreamResponse:
        """SSE of new entries from ``Last-Event-ID`` (or ``?cursor=``) on."""
        try:
            f = Filters.parse(request.query)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        start = decode_cursor(request.headers.get("Last-Event-ID")
                              or request.query.get("cursor", ""))
        tails: dict[str, tuple[str, Tail]] = {}
        remote: dict[str, tuple[str, StoreTail]] = {}
        positions: dict[str, tuple[int, int]] = {}
        for src in self.resolve(f.names):
            if src.local is not None:
                tail = Tail(src.local.log_path, start.get(src.key))
                tails[src.key] = (src.label, tail)
                positions[src.key] = tail.position
            elif self.store is not None:
                at = start.get(src.key) or (watermark() + 1, 0)
                remote[src.key] = (src.label, StoreTail(self.store, src.sel, at, f.stream,
                                                        f.grep))
                positions[src.key] = at
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        try:
            await resp.write(b"retry: 500\n\n")
            await self._pump(resp, f, tails, remote, positions)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            for _, tail in tails.values():
                tail.close()
        return resp

    async def _poll_store(self, remote: dict[str, tuple[str, StoreTail]]
                          ) -> list[tuple[int, str, dict | None, tuple[int, int]]]:
        """New store entries of every remote part: (time, cursor key, entry, position)."""
        out = []
        loop = asyncio.get_running_loop()
        for key, (label, st) in remote.items():
            try:
                got = await loop.run_in_executor(None, st.read)
            except LogStoreError:
                continue  # the next poll retries from the same position
            out += [(e.time_ns, key, _entry(label, e, True), pos) for e, pos in got]
        return out

    async def _pump(self, resp: web.StreamResponse, f: Filters,
                    tails: dict[str, tuple[str, Tail]],
                    remote: dict[str, tuple[str, StoreTail]],
                    positions: dict[str, tuple[int, int]]) -> None:
        quiet_since = time.monotonic()
        store_due = 0.0
        while True:
            batch: list[tuple[int, str, dict | None, tuple[int, int]]] = []
            for key, (label, tail) in tails.items():
                batch += [(ln.time_ns, key, _entry(label, ln) if f.accepts(ln.stream,
                                                                           ln.message)
                           else None, ln.position) for ln in tail.read()]
            if remote and time.monotonic() >= store_due:
                store_due = time.monotonic() + STORE_POLL
                batch += await self._poll_store(remote)
            batch.sort(key=lambda b: b[0])
            out = []
            for _, key, entry, pos in batch:
                positions[key] = pos
                if entry is not None:
                    out.append(b"id: " + encode_cursor(positions).encode() + b"\ndata: "
                               + orjson.dumps(entry) + b"\n\n")
            for key, (_, st) in remote.items():
                positions[key] = st.position  # everything up to its watermark is out
            if out:
                await resp.write(b"".join(out))
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE:
                await resp.write(b": keepalive\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL)
