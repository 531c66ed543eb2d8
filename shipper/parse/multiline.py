"""Optional multiline joining (``--multiline-start REGEX``): an entry matching the regex
starts a new event, every other entry is appended to the current one with a newline (stack
traces). Per (file, stream); an event is emitted when the next one starts, when it would
exceed ``max_bytes``, or after ``timeout`` seconds without a new entry."""

from __future__ import annotations

import re

from shipper.records import TRUNCATED

DEFAULT_TIMEOUT = 2.0


class Group:
    """The entries of one event being collected."""

    __slots__ = ("parts", "size", "start", "end", "time_ns", "flags", "last")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.start = -1  # file offset where the first entry's line began; -1: empty
        self.end = 0
        self.time_ns = 0
        self.flags = 0
        self.last = 0.0


Event = tuple[int, str | bytes, int, int]  # (time_ns, message, end offset, flags)


class Multiline:
    """One stream's multiline state. ``feed`` returns the event it completes, or None."""

    __slots__ = ("start_re", "max_bytes", "group")

    def __init__(self, start_re: re.Pattern[str], max_bytes: int) -> None:
        self.start_re = start_re
        self.max_bytes = max_bytes
        self.group = Group()

    @property
    def active(self) -> bool:
        return self.group.start >= 0

    def feed(self, time_ns: int, message: str | bytes, start: int, end: int, flags: int,
             now: float) -> Event | None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        done: Event | None = None
        if self.group.start >= 0 and self.start_re.search(text) is not None:
            done = self.take()
        g = self.group
        if g.start < 0:
            g.start, g.time_ns = start, time_ns
        sep = 1 if g.parts else 0
        room = self.max_bytes - g.size - sep
        if len(text) > room:
            g.flags |= TRUNCATED
            text = text[:max(room, 0)]
        if room >= 0:
            g.parts.append(text)
            g.size += sep + len(text)
        g.flags |= flags
        g.end, g.last = end, now
        return done

    def take(self) -> Event | None:
        """Emit the current event (None if there is none)."""
        g = self.group
        if g.start < 0:
            return None
        self.group = Group()
        return g.time_ns, "\n".join(g.parts), g.end, g.flags
