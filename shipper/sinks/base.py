"""The interface every shipper sink implements. The record it ships is the model's
(``shipper.records``: sources make records and must not import sinks), re-exported here.

Decided: **asyncio**. One event loop runs the whole shipper: the reader (plain ``os.pread``
on local files, fast enough not to need a thread) fills batches, and the pipeline awaits
``Sink.send`` on every sink for a batch at once. A sink whose client library blocks (none
of ours so far) wraps it in ``asyncio.to_thread``.

The contract, as Fluent Bit and Vector have it: a sink only reports how a batch went
(:class:`Result`: ok / retry / fail, or per record with ``partial``); the pipeline owns
backoff, retries, checkpoints and metrics. A sink must not retry on its own nor raise for a
server that is down: an exception from ``send`` is treated as ``Result.retry()`` and
counted. The same ``batch`` list (same order) is passed again on retry, minus the records
already acknowledged when the last result was ``partial``.
"""

from __future__ import annotations

from argparse import ArgumentParser, Namespace
from dataclasses import dataclass
from typing import Literal

# One error for "this sink cannot be built", whichever program builds it.
from formats.delivery import SinkError
from shipper.records import PARSE_ERROR, PARTIAL, TRUNCATED, Origin, Record

__all__ = ["HEALTH_KEYS", "PARSE_ERROR", "PARTIAL", "TRUNCATED", "Origin", "Record", "Result",
           "Sink", "SinkError", "add_arguments"]

# The counters every sink's ``health`` returns (a sink may add more keys).
HEALTH_KEYS = ("sent_batches", "sent_records", "errors")


Kind = Literal["ok", "retry", "fail", "partial"]


@dataclass(frozen=True, slots=True)
class Result:
    """How one ``send`` went. Build with the class methods:

    - ``Result.ok()``: every record is stored.
    - ``Result.retry(after)``: nothing (more) stored, try the whole batch again; ``after``
      is the server's hint in seconds (Retry-After), None lets the pipeline back off.
    - ``Result.fail(reason)``: the batch can never be stored (e.g. 400): the pipeline counts
      every record as rejected and moves on (a sink may dead-letter them first).
    - ``Result.partial(acked, retry)``: per record, same order as the batch: ``acked[i]``
      stored (or already there, e.g. ES 409); else ``retry[i]`` send it again; else it is
      rejected. ``after`` and ``reason`` as above.
    """

    kind: Kind
    after: float | None = None
    reason: str = ""
    acked: tuple[bool, ...] = ()
    retry_mask: tuple[bool, ...] = ()

    @classmethod
    def ok(cls) -> Result:
        return _OK

    @classmethod
    def retry(cls, after: float | None = None, reason: str = "") -> Result:
        return cls("retry", after=after, reason=reason)

    @classmethod
    def fail(cls, reason: str) -> Result:
        return cls("fail", reason=reason)

    @classmethod
    def partial(cls, acked: list[bool], retry: list[bool], after: float | None = None,
                reason: str = "") -> Result:
        if len(acked) != len(retry):
            raise ValueError(f"acked and retry differ in length: {len(acked)} != {len(retry)}")
        return cls("partial", after=after, reason=reason, acked=tuple(acked),
                   retry_mask=tuple(retry))


_OK = Result("ok")


def add_arguments(parser: ArgumentParser) -> None:
    """The hook a sink module may offer for its own flags (``--loki-tenant``...): the
    shipper's CLI calls ``add_arguments`` of every module in ``shipper.pipeline.SINKS``
    that defines one. Prefix flags with the sink kind."""
    return None


class Sink:
    """Base of all sinks. ``name`` identifies it in metrics (``sink="loki"``)."""

    name: str = "sink"

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> Sink:
        """Build from ``--sink KIND=URL`` and the parsed shipper options (including the
        sink's own flags). ``args.host`` is the node name. Raise SinkError if unusable.
        Do no I/O here: connections are made lazily in ``send`` (inside the loop)."""
        raise NotImplementedError

    async def send(self, batch: list[Record]) -> Result:
        """Deliver ``batch`` (oldest first) and say how it went. Never raise for a server
        that is down or slow: return ``Result.retry``."""
        raise NotImplementedError

    def health(self) -> dict[str, float]:
        """Counters for the shipper's metrics: at least the ``HEALTH_KEYS``."""
        return dict.fromkeys(HEALTH_KEYS, 0.0)

    async def close(self) -> None:
        """Release connections; called once, after the last ``send`` returned."""
        return None
