"""The only glue of the shipper: sources -> parse -> enrich -> batch -> sinks, with the
acknowledgements flowing back into the registry.

Two asyncio tasks share one loop. The *reader* task rescans (on inotify events and every
``rescan_interval``), reads due files into the current batch and cuts it when the sender
is idle or the batch is full: batches grow with load on their own, so a quiet node ships
each line within a poll interval and a busy one sends big batches. It stops reading while
``max_buffer_bytes`` of read data wait for acknowledgement (a slow or dead sink pauses the
files, it does not grow memory). The *sender* task delivers batches in order, each to
every sink at once; a sink's retries (backoff owned here, not by the sink) hold back the
batches behind it, and only when every sink is done with a batch do its checkpoints
advance the registry, which is saved (atomically, fsync'd) before the next batch goes out:
a crash repeats at most the batch in flight.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from formats.delivery import Backoff
from shipper.records import Record
from shipper.sinks.base import Result, Sink
from shipper.sources.checkpoint import Registry
from shipper.sources.reader import Checkpoint, Reader

log = logging.getLogger(__name__)

# ``--sink KIND=URL`` -> "module:Class", imported only when that kind is used.
SINKS: dict[str, str] = {
    "file": "shipper.sinks.file:FileSink",
    "influxdb": "shipper.sinks.influx:InfluxSink",
    "influxdb-v1": "shipper.sinks.influx:InfluxV1Sink",
    "influxdb-v2": "shipper.sinks.influx:InfluxV2Sink",
    "loki": "shipper.sinks.loki:LokiSink",
    "elasticsearch": "shipper.sinks.elasticsearch:ElasticsearchSink",
}


def sink_class(kind: str) -> type[Sink]:
    """The Sink class registered for ``kind``; KeyError if there is none."""
    module, _, cls = SINKS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass
class Batch:
    """Records in file order, the bytes read to make them, and the file watermarks that
    become true once every sink has them."""

    records: list[Record]
    nbytes: int
    checkpoints: list[Checkpoint]


@dataclass
class SinkStats:
    """Per-sink counters (records): shipped, retried (resends), rejected (given up)."""

    shipped: int = 0
    retried: int = 0
    rejected: int = 0
    errors: int = 0  # send() raised
    failing_since: float = 0.0  # monotonic time of the first failure in a row; 0: healthy
    last_error: str = ""


@dataclass
class PipelineOptions:
    max_buffer_bytes: int = 16 << 20
    max_batch_bytes: int = 2 << 20
    rescan_interval: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=30.0))
    drain_timeout: float = 5.0  # on stop: how long queued batches may still be delivered


class Shipper:
    """Runs the reader and the sender until ``stop()``; see the module docstring."""

    def __init__(self, reader: Reader, sinks: list[Sink], registry: Registry,
                 options: PipelineOptions | None = None,
                 on_ack: Callable[[Batch], None] | None = None) -> None:
        if not sinks:
            raise ValueError("the shipper needs at least one sink")
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"two sinks with the same name: {names}")
        self.reader = reader
        self.sinks = sinks
        self.registry = registry
        self.opt = options or PipelineOptions()
        self.on_ack = on_ack
        self.stats = {s.name: SinkStats() for s in sinks}
        self.bytes_read = 0
        self.buffered = 0  # bytes read and not yet acknowledged
        self.paused = 0  # times reading paused for a full buffer
        self.batches = 0
        self.started = time.monotonic()
        self.last_loop = time.monotonic()
        self._current: list[Record] = []
        self._cur_bytes = 0
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._sending = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._stopped = asyncio.Event()
        self._dirty = True

    # --- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask both tasks to finish (queued batches get ``drain_timeout`` to go out)."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        self._space.set()

    def notify(self) -> None:
        """Something changed on disk (called from watchdog's thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._mark_dirty)

    def _mark_dirty(self) -> None:
        self._dirty = True
        self._wake.set()

    async def run(self) -> None:
        """Ship until ``stop()``; then drain, save the registry and close the sinks."""
        self._loop = asyncio.get_running_loop()
        sender = asyncio.create_task(self._send_loop(), name="shipper-sender")
        try:
            await self._read_loop()
        finally:
            self._cut(force=True)
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(sender), self.opt.drain_timeout)
            except (TimeoutError, asyncio.CancelledError):
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            await asyncio.to_thread(self.registry.save, self.registry.snapshot())
            for sink in self.sinks:
                try:
                    await sink.close()
                except Exception as exc:  # one sink's close must not keep the others open
                    log.warning("closing sink %s: %s", sink.name, exc)

    # --- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reader, opt = self.reader, self.opt
        next_scan = 0.0
        next_flush = 0.0
        next_debug = 0.0
        while not self._stopping:
            now = self.last_loop = time.monotonic()
            if now >= next_debug and log.isEnabledFor(logging.DEBUG):
                next_debug = now + 1.0
                log.debug("state: buffered=%d files=%d live=%d queued=%d sending=%s current=%d",
                          self.buffered, len(reader.tailers), len(reader.live),
                          self._queue.qsize(), self._sending, len(self._current))
            if self._dirty or reader.want_rescan or now >= next_scan:
                self._dirty = False
                reader.rescan()
                next_scan = now + opt.rescan_interval
            reader.reap()
            if self.buffered >= opt.max_buffer_bytes:
                self.paused += 1
                self._cut()
                self._space.clear()
                await self._wait(self._space, 0.5)
                continue
            budget = min(opt.max_buffer_bytes - self.buffered,
                         max(opt.max_batch_bytes - self._cur_bytes, 1))
            n = reader.read_round(self._current, budget)
            self._cur_bytes += n
            self.buffered += n
            self.bytes_read += n
            if now >= next_flush:
                reader.flush_due(self._current)
                next_flush = now + 0.1
            self._cut()
            if n:
                await asyncio.sleep(0)  # let the sender take what is cut
                continue
            due = min(reader.next_due(), next_scan, next_flush)
            self._wake.clear()
            await self._wait(self._wake, max(due - time.monotonic(), 0.005))

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def _cut(self, force: bool = False) -> None:
        """Hand the current batch to the sender when it is idle, or when it is full."""
        full = self._cur_bytes >= self.opt.max_batch_bytes
        if not (force or full or (not self._sending and self._queue.empty())):
            return
        checkpoints = self.reader.checkpoints()
        if not self._current and not checkpoints and not self._cur_bytes:
            return
        self._queue.put_nowait(Batch(self._current, self._cur_bytes, checkpoints))
        self._current = []
        self._cur_bytes = 0

    # --- sending ----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            self._sending = True
            try:
                if batch.records:
                    delivered = await self._deliver(batch.records)
                    if not delivered:  # stopping with the batch unacknowledged
                        return
                    self.batches += 1
                self.reader.acknowledge(batch.checkpoints)
                if batch.checkpoints:
                    await asyncio.to_thread(self.registry.save, self.registry.snapshot())
                if self.on_ack is not None:
                    self.on_ack(batch)
            finally:
                self._sending = False
                self.buffered -= batch.nbytes
                self._space.set()
                self._wake.set()

    async def _deliver(self, records: list[Record]) -> bool:
        results = await asyncio.gather(*(self._deliver_one(s, records) for s in self.sinks))
        return all(results)

    async def _deliver_one(self, sink: Sink, records: list[Record]) -> bool:
        """Send until the sink took or refused every record; False if stopped first."""
        st = self.stats[sink.name]
        pending = records
        attempt = 0
        while True:
            try:
                res = await sink.send(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink's bug or surprise: retried, counted, logged
                st.errors += 1
                res = Result.retry(reason=f"{type(exc).__name__}: {exc}")
            if res.kind == "ok":
                st.shipped += len(pending)
                break
            if res.kind == "fail":
                st.rejected += len(pending)
                log.warning("sink %s rejected %d records: %s", sink.name, len(pending), res.reason)
                break
            if res.kind == "partial":
                keep = []
                for r, acked, again in zip(pending, res.acked, res.retry_mask, strict=True):
                    if acked:
                        st.shipped += 1
                    elif again:
                        keep.append(r)
                    else:
                        st.rejected += 1
                if len(keep) + sum(res.acked) < len(pending):
                    log.warning("sink %s rejected records: %s", sink.name, res.reason)
                pending = keep
                if not pending:
                    break
            attempt += 1
            st.retried += len(pending)
            st.last_error = res.reason
            if not st.failing_since:
                st.failing_since = time.monotonic()
                log.warning("sink %s: delivery failing, retrying with backoff: %s",
                            sink.name, res.reason or res.kind)
            await self._wait(self._stopped, self.opt.backoff.delay(attempt, res.after))
            if self._stopping:
                return False
        if st.failing_since:
            log.info("sink %s: delivering again", sink.name)
            st.failing_since = 0.0
        return True

    # --- state for metrics and /healthz -----------------------------------------------------

    def healthy(self, stale_after: float = 30.0) -> tuple[bool, str]:
        """False when the loop is stuck or a sink has failed for ``stale_after`` seconds."""
        now = time.monotonic()
        if now - self.last_loop > stale_after:
            return False, f"reader loop stuck for {now - self.last_loop:.0f}s"
        for name, st in self.stats.items():
            if st.failing_since and now - st.failing_since > stale_after:
                return (
                    False,
                    f"sink {name} failing for {now - st.failing_since:.0f}s: {st.last_error}",
                )
        return True, "ok"
