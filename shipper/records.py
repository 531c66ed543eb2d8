"""What the shipper moves from sources to sinks: one ``Record`` per log entry, sharing an
``Origin`` per file. Sources and parsers make them, sinks take them; neither imports the
other (``shipper.pipeline`` is the glue).

Records are ``NamedTuple`` s (immutable and ~5x cheaper to build than a frozen dataclass:
the hot path builds one per line). Everything constant for one file (container id, name,
image, labels, host, file identity) lives in one shared :class:`Origin`, reachable through
properties, so a record costs one tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["PARSE_ERROR", "PARTIAL", "TRUNCATED", "Origin", "Record"]

# Record.flags bits.
PARTIAL = 1  # an unfinished line flushed anyway (flush timeout, or EOF of a rotated file)
TRUNCATED = 2  # cut at --max-line-bytes; the rest of the line was dropped
PARSE_ERROR = 4  # not a valid json-file/CRI line: ``message`` is the raw line


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
