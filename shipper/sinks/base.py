"""The interface every shipper sink implements, and the record it ships.

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

Records are ``NamedTuple`` s (immutable and ~5x cheaper to build than a frozen dataclass:
the hot path builds one per line). Everything constant for one file (container id, name,
image, labels, host, file identity) lives in one shared :class:`Origin`, reachable through
properties, so a record costs one tuple.
"""

from __future__ import annotations

from argparse import ArgumentParser, Namespace
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

# One error for "this sink cannot be built", whichever program builds it.
from formats.delivery import SinkError

__all__ = ["HEALTH_KEYS", "PARSE_ERROR", "PARTIAL", "TRUNCATED", "Origin", "Record", "Result",
           "Sink", "SinkError", "add_arguments"]

# Record.flags bits.
PARTIAL = 1  # an unfinished line flushed anyway (flush timeout, or EOF of a rotated file)
TRUNCATED = 2  # cut at --max-line-bytes; the rest of the line was dropped
PARSE_ERROR = 4  # not a valid json-file/CRI line: ``message`` is the raw line

# The counters every sink's ``health`` returns (a sink may add more keys).
HEALTH_KEYS = ("sent_batches", "sent_records", "errors")


@dataclass(frozen=True, slots=True)
class Origin:
    """What every record of one log file shares: the container it belongs to (from its
    ``config.v2.json``; empty strings when unknown) and the file's identity. A new Origin
    is made when the metadata changes, so records never see a half-updated one."""

    container_id: str
    container_name: str  # without Docker's leading "/"
    image: str
    labels: dict[str, str] = field(default_factory=dict)  # only whitelisted labels
    host: str = ""
    path: str = ""  # the path the file was opened as (it may since have been rotated)
    dev: int = 0
    ino: int = 0
    fingerprint: str = ""  # hex digest of the file's first bytes (see sources.fingerprint)


class Record(NamedTuple):
    """One log entry, ready to ship.

    ``message`` is the entry without its line terminator: ``str`` for every entry that
    parsed; ``bytes`` only for a ``parse_error`` line that is not valid UTF-8 (use
    :attr:`text` when a str is needed). ``offset`` is the byte offset just past the entry's
    last line in its file: with the origin's (dev, ino) it identifies the entry uniquely
    (Elasticsearch ``_id``) and is what checkpoints are made of.
    """

    time_ns: int
    message: str | bytes
    stream: str  # "stdout" / "stderr" (anything else is a parse_error)
    offset: int
    flags: int
    origin: Origin

    @property
    def container_id(self) -> str:
        return self.origin.container_id

    @property
    def container_name(self) -> str:
        return self.origin.container_name

    @property
    def image(self) -> str:
        return self.origin.image

    @property
    def labels(self) -> dict[str, str]:
        return self.origin.labels

    @property
    def host(self) -> str:
        return self.origin.host

    @property
    def dev(self) -> int:
        return self.origin.dev

    @property
    def ino(self) -> int:
        return self.origin.ino

    @property
    def fingerprint(self) -> str:
        return self.origin.fingerprint

    @property
    def partial(self) -> bool:
        return bool(self.flags & PARTIAL)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & TRUNCATED)

    @property
    def parse_error(self) -> bool:
        return bool(self.flags & PARSE_ERROR)

    @property
    def text(self) -> str:
        """``message`` as str (invalid UTF-8 of a raw line becomes U+FFFD)."""
        m = self.message
        return m if isinstance(m, str) else m.decode("utf-8", "replace")

    @property
    def uid(self) -> str:
        """A deterministic id of this entry: same file bytes -> same id, across restarts."""
        o = self.origin
        return f"{o.dev:x}-{o.ino:x}-{o.fingerprint[:16]}-{self.offset:x}"


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
