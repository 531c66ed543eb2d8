"""NDJSON to a file or stdout (``--sink file=PATH`` / ``--sink file=-``): for piping into
other tools and for debugging.

One object per entry: ``time_ns``, ``container_id``, ``container_name``, ``image``,
``stream``, ``message``, ``offset`` (end of the entry in its file) and ``host``/``labels``
when set, plus ``partial``/``truncated``/``parse_error`` only when true. A message that is
not valid UTF-8 (a raw bad line) is written with U+FFFD in place of the bad bytes.

The file is opened ``O_APPEND`` and each batch goes out in as few ``write`` calls as the
kernel allows; a batch is acknowledged once written (``--file-fsync`` also syncs it to
disk first). A line torn by a crash mid-write is ended with a newline when the file is
opened again, so readers skip one bad line and the re-sent batch follows intact. The
per-file part of each object is serialised once per origin, so an entry costs one
``orjson.dumps`` of its message.
"""

from __future__ import annotations

import asyncio
import os
from argparse import ArgumentParser, Namespace

import orjson

from shipper.sinks.base import PARSE_ERROR, PARTIAL, TRUNCATED, Origin, Record, Result, Sink

_FLAG_TAIL = {
    f: b"".join(x for bit, x in ((PARTIAL, b',"partial":true'), (TRUNCATED, b',"truncated":true'),
                                (PARSE_ERROR, b',"parse_error":true')) if f & bit) + b"}\n"
    for f in range(8)
}


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--file-fsync", action="store_true",
                        help="file sink: fsync each batch before acknowledging it")


def origin_part(o: Origin) -> bytes:
    """``"container_id":...,"image":...,`` for every entry of one origin."""
    d: dict[str, object] = {"container_id": o.container_id, "container_name": o.container_name,
                            "image": o.image}
    if o.host:
        d["host"] = o.host
    if o.labels:
        d["labels"] = o.labels
    return orjson.dumps(d)[1:-1] + b","


def encode(batch: list[Record], cache: dict[int, tuple[Origin, dict[str, bytes]]] | None = None
           ) -> bytes:
    """The NDJSON of ``batch``."""
    if cache is None:
        cache = {}
    dumps, tails = orjson.dumps, _FLAG_TAIL
    out = []
    app = out.append
    last: Origin | None = None
    parts: dict[str, bytes] = {}
    for t, msg, stream, off, flags, o in batch:
        if o is not last:
            hit = cache.get(id(o))
            if hit is None or hit[0] is not o:
                if len(cache) > 4096:
                    cache.clear()
                hit = cache[id(o)] = (o, {})
            parts, last = hit[1], o
        part = parts.get(stream)
        if part is None:
            part = parts[stream] = (origin_part(o) + b'"stream":' + dumps(stream)
                                    + b',"offset":')
        if type(msg) is not str:
            msg = msg.decode("utf-8", "replace")
        app(b'{"time_ns":%d,%s%d,"message":%s%s' % (t, part, off, dumps(msg), tails[flags]))
    return b"".join(out)


class FileSink(Sink):
    """Appends NDJSON to ``path`` (``-``: standard output)."""

    name = "file"

    def __init__(self, path: str, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync and path != "-"
        self._fd = -1
        self._cache: dict[int, tuple[Origin, dict[str, bytes]]] = {}
        self.counters = {"sent_batches": 0.0, "sent_records": 0.0, "errors": 0.0}

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> Sink:
        if not url:
            from shipper.sinks.base import SinkError
            raise SinkError("file", "needs a path or - (--sink file=/tmp/out.ndjson)")
        return cls(url, bool(getattr(args, "file_fsync", False)))

    def _open(self) -> int:
        if self._fd < 0:
            if self.path == "-":
                self._fd = os.dup(1)
            else:
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT
                                   | os.O_CLOEXEC, 0o640)
                size = os.fstat(self._fd).st_size
                if size and os.pread(self._fd, 1, size - 1) != b"\n":
                    # a line torn by a crash mid-write (it was not acknowledged, so it is
                    # sent again): end it, so it cannot swallow the next record
                    os.write(self._fd, b"\n")
        return self._fd

    async def send(self, batch: list[Record]) -> Result:
        data = encode(batch, self._cache)
        try:
            fd = self._open()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                await asyncio.to_thread(os.fsync, fd)
        except BlockingIOError:
            self.counters["errors"] += 1
            return Result.retry(0.05, "output would block")
        except OSError as exc:  # disk full, closed pipe: retried (a pipe may be reopened)
            self.counters["errors"] += 1
            self._close_fd()
            return Result.retry(None, f"{self.path}: {exc}")
        self.counters["sent_batches"] += 1
        self.counters["sent_records"] += len(batch)
        return Result.ok()

    def health(self) -> dict[str, float]:
        return dict(self.counters)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    async def close(self) -> None:
        self._close_fd()
