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
server process or after the file rotated. Containers not on this host have the store's
history only."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from boxwatch.logs.query import LogEntry, LogQuery, LogStore, LogStoreError, Match, QueryError
from boxwatch.logs.query import parse_time as parse_since
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


def _entry(name: str, line: Line | LogEntry) -> dict[str, Any]:
    if isinstance(line, Line):
        return {"t": line.time_ns, "c": name, "s": line.stream, "m": line.message}
    return {"t": line.time_ns, "c": line.container, "s": line.stream, "m": line.message,
            "h": line.host}


class LogsView:
    def __init__(self, store: LogStore | None, roots: list[str]) -> None:
        self.store = store
        self.roots = roots

    def local(self, names: tuple[str, ...]) -> dict[str, LocalContainer]:
        found = {}
        for name in names:
            c = find_local(self.roots, name)
            if c is not None:
                found[name] = c
        return found

    async def history(self, request: web.Request) -> web.Response:
        """``?c=NAME&c=...&stream=&grep=&since=1h&limit=1000`` -> entries, cursor, errors."""
        try:
            f = Filters.parse(request.query)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        local = self.local(f.names)
        now = time.time_ns()
        entries: list[dict[str, Any]] = []
        errors: list[str] = []
        positions: dict[str, tuple[int, int]] = {}
        cutoffs: dict[str, int] = {}
        for name, c in local.items():
            tail = Tail(c.log_path, back_bytes=WINDOW)
            lines = tail.read()
            positions[c.id] = tail.position
            tail.close()
            cutoffs[name] = lines[0].time_ns if lines else now
            entries += [_entry(name, ln) for ln in lines
                        if f.accepts(ln.stream, ln.message)
                        and (f.since_ns is None or ln.time_ns >= f.since_ns)]
        stored = await asyncio.get_running_loop().run_in_executor(
            None, self._search, f, cutoffs, errors)
        entries += stored
        entries.sort(key=lambda e: e["t"])
        if f.limit:
            entries = entries[-f.limit:]
        missing = [n for n in f.names if n not in local]
        if missing:
            errors.append(f"no live tail for {', '.join(missing)}: not on this host")
        body = {"entries": entries, "cursor": encode_cursor(positions), "errors": errors,
                "local": sorted(local)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _search(self, f: Filters, cutoffs: dict[str, int], errors: list[str]) -> list[dict]:
        if self.store is None:
            errors.append("log store not configured: only what the log files still hold")
            return []
        out: list[dict[str, Any]] = []
        for name in f.names:
            q = LogQuery(container=Match(name, False), stream=f.stream, since_ns=f.since_ns,
                         until_ns=cutoffs[name] - 1 if name in cutoffs else None,
                         grep=f.grep, limit=f.limit)
            try:
                out += [_entry(name, e) for e in self.store.search(q)]
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
        local = self.local(f.names)
        tails: dict[str, tuple[str, Tail]] = {}
        positions: dict[str, tuple[int, int]] = {}
        for name, c in local.items():
            tail = Tail(c.log_path, start.get(c.id[:16]))
            tails[c.id] = (name, tail)
            positions[c.id] = tail.position
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        try:
            await resp.write(b"retry: 500\n\n")
            await self._pump(resp, f, tails, positions)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            for _, tail in tails.values():
                tail.close()
        return resp

    async def _pump(self, resp: web.StreamResponse, f: Filters,
                    tails: dict[str, tuple[str, Tail]],
                    positions: dict[str, tuple[int, int]]) -> None:
        quiet_since = time.monotonic()
        while True:
            batch: list[tuple[int, str, str, Line]] = []
            for cid, (name, tail) in tails.items():
                batch += [(ln.time_ns, cid, name, ln) for ln in tail.read()]
            batch.sort(key=lambda b: b[0])
            out = []
            for _, cid, name, ln in batch:
                positions[cid] = ln.position
                if f.accepts(ln.stream, ln.message):
                    out.append(b"id: " + encode_cursor(positions).encode() + b"\ndata: "
                               + orjson.dumps(_entry(name, ln)) + b"\n\n")
            if out:
                await resp.write(b"".join(out))
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE:
                await resp.write(b": keepalive\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL)
