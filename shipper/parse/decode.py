"""Lines of one log file -> Records: format detection, partial and multiline joining,
the size cap, bad input, and the offsets checkpoints are made of. The shipper's hot path.

json-file lines go through a fast path that handles the common line (a 3-key object,
stdout/stderr, a ``Z`` time within the last-seen second) in-line; anything else is handed to
:func:`formats.jsonfile.parser.parse_line`, the one json-file parser, which decides. The fast
path accepts a subset of what parse_line accepts and yields the same values (a property
test checks it), so there is still one definition of the format.
"""

from __future__ import annotations

import re
import time

import orjson

from formats.jsonfile.parser import parse_line
from formats.logentry import ParseError
from shipper.parse.cri import STREAMS, Format, detect_format, parse_cri
from shipper.parse.multiline import Multiline
from shipper.parse.partial import DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_LINE_BYTES, Joiner, cut
from shipper.records import PARSE_ERROR, PARTIAL, TRUNCATED, Origin, Record

_POW = [10 ** (9 - i) for i in range(10)]  # fraction of i digits -> ns multiplier
_new = tuple.__new__


def _text(data: bytes) -> str | bytes:
    """Valid UTF-8 as str; anything else stays bytes (Record.text decodes with U+FFFD)."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


class FileDecoder:
    """The parse state of one file. ``feed`` takes complete lines (newline stripped) and
    appends Records to ``out``; entries ending at or before ``skip`` were delivered before
    a restart and are not emitted again."""

    def __init__(self, path: str, origin: Origin, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 multiline: re.Pattern[str] | None = None,
                 flush_timeout: float = DEFAULT_FLUSH_TIMEOUT, multiline_timeout: float = 2.0,
                 fmt: Format | None = None) -> None:
        self.path = path
        self.origin = origin
        self.fmt: Format | None = fmt
        self.max_line_bytes = max_line_bytes
        self.flush_timeout = flush_timeout
        self.multiline_timeout = multiline_timeout
        self.joiners = {s: Joiner(max_line_bytes) for s in STREAMS}
        self.multiline_re = multiline
        self.multi = ({s: Multiline(multiline, max_line_bytes) for s in STREAMS}
                      if multiline is not None else None)
        self.skip = 0
        self.consumed = 0  # offset just past the last line fed
        self.lines = 0
        self.parse_errors = 0
        self.active = 0  # joiners holding chunks
        self.last_ns = 0  # time of the last entry emitted (for lag in seconds)
        self.now = 0.0
        self._tprefix = "\0"  # "YYYY-MM-DDTHH:MM:SS." of the last time parsed slowly
        self._tsecs = 0

    # --- offsets ------------------------------------------------------------------------

    def watermarks(self) -> tuple[int, int]:
        """(resume, acked) as of now: where to restart reading, and the offset such that
        every entry ending at or before it has already been emitted."""
        resume = acked = self.consumed
        if self.active or self.multi is not None:
            for st in self._pending_states():
                resume = min(resume, st.start)
                acked = min(acked, st.end - 1)
        return resume, acked

    def _pending_states(self) -> list:
        states: list = [j for j in self.joiners.values() if j.start >= 0]
        if self.multi is not None:
            states += [m.group for m in self.multi.values() if m.group.start >= 0]
        return states

    # --- feeding ------------------------------------------------------------------------

    def feed(self, lines: list[bytes], off: int, out: list[Record]) -> None:
        """Decode ``lines`` (newlines stripped) whose first starts at file offset ``off``."""
        if not lines:
            return
        n0 = len(out)
        self.now = time.monotonic()
        self.lines += len(lines)
        if self.fmt is None:
            self.fmt = detect_format(self.path, lines[0])
        if self.fmt == "json-file" and self.multi is None:
            self._feed_json_fast(lines, off, out)
        else:
            line = self._json_line if self.fmt == "json-file" else self._cri_line
            for raw in lines:
                end = off + len(raw) + 1
                line(raw, off, end, out)
                off = end
            self.consumed = off
        if len(out) > n0:
            self.last_ns = out[-1][0]

    def _feed_json_fast(self, lines: list[bytes], off: int, out: list[Record]) -> None:
        loads, app, origin, skip = orjson.loads, out.append, self.origin, self.skip
        tp, tsecs, maxb, pw, streams = (
            self._tprefix,
            self._tsecs,
            self.max_line_bytes,
            _POW,
            STREAMS,
        )
        slow = self._json_line
        active = self.active
        for raw in lines:
            start = off
            n = len(raw)
            off += n + 1
            try:  # the common line: whole, 3 keys, a Z time in the second seen last
                obj = loads(raw)
                ts = obj["time"]
                f = ts[20:-1]
                if (ts.startswith(tp) and ts[-1] == "Z" and f.isdigit() and f.isascii()
                        and len(obj) == 3):
                    log = obj["log"]
                    stream = obj["stream"]
                    if log[-1:] == "\n" and stream in streams and not active and n < maxb:
                        if off > skip:
                            app(_new(Record, (tsecs + int(f) * pw[len(f)], log[:-1], stream,
                                              off, 0, origin)))
                        continue
            except (ValueError, LookupError, TypeError):  # orjson's JSONDecodeError too
                pass
            slow(raw, start, off, out)  # anything else: the real parser decides
            tp, tsecs, active = self._tprefix, self._tsecs, self.active
        self.consumed = off

    def _json_line(self, raw: bytes, start: int, end: int, out: list[Record]) -> None:
        """One json-file line through the real parser (bad input, partials, new second)."""
        try:
            entry = parse_line(raw)
        except ParseError:
            self._error(raw, start, end, out)
            return
        if entry.stream not in STREAMS:
            self._error(raw, start, end, out)
            return
        log = entry.log.decode("utf-8", "surrogateescape")  # orjson gave valid UTF-8
        secs = entry.time_ns - entry.time_ns % 1_000_000_000
        if secs != self._tsecs:  # the fast path takes lines of this second from now on
            self._tsecs = secs
            self._tprefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(secs // 10**9))
        self._entry(entry.time_ns, log, entry.stream, start, end, out)

    def _cri_line(self, raw: bytes, start: int, end: int, out: list[Record]) -> None:
        try:
            ns, stream, partial, content = parse_cri(raw)
        except ParseError:
            self._error(raw, start, end, out)
            return
        self._entry(ns, content if partial else content + b"\n", stream, start, end, out)

    # --- joining and emitting ------------------------------------------------------------

    def _entry(self, ns: int, piece: str | bytes, stream: str, start: int, end: int,
               out: list[Record]) -> None:
        """One parsed entry: ``piece`` ends with a newline when it ends a line."""
        j = self.joiners[stream]
        if piece[-1:] not in ("\n", b"\n"):  # a partial chunk: more of the line follows
            if j.start < 0:
                self.active += 1
            j.add(piece, start, end, ns, self.now)
            return
        piece = piece[:-1]
        flags = 0
        if j.start >= 0:
            self.active -= 1
            ns, start = j.time_ns, j.start
            piece, truncated = j.take(piece)
            if truncated:
                flags = TRUNCATED
        elif len(piece) > self.max_line_bytes // 4:
            cutp = cut(piece, self.max_line_bytes)
            if len(cutp) < len(piece):
                piece, flags = cutp, TRUNCATED
        if isinstance(piece, bytes):
            piece = _text(piece)
        self._emit(ns, piece, stream, start, end, flags, out)

    def _emit(self, ns: int, msg: str | bytes, stream: str, start: int, end: int, flags: int,
              out: list[Record]) -> None:
        if self.multi is not None:
            event = self.multi[stream].feed(ns, msg, start, end, flags, self.now)
            if event is None:
                return
            ns, msg, end, flags = event
        if end > self.skip:
            out.append(Record(ns, msg, stream, end, flags, self.origin))

    def _error(self, raw: bytes, start: int, end: int, out: list[Record],
               flags: int = 0) -> None:
        """A line that does not parse: shipped raw, flagged and counted, never dropped."""
        self.parse_errors += 1
        if len(raw) > self.max_line_bytes:
            raw, flags = raw[:self.max_line_bytes], flags | TRUNCATED
        if end > self.skip:
            out.append(Record(time.time_ns(), _text(raw), "", end, flags | PARSE_ERROR,
                              self.origin))

    def oversize(self, head: bytes, start: int, end: int, out: list[Record]) -> None:
        """The start of a line longer than any entry can be (no newline in sight): shipped
        cut, flagged; the reader drops the rest of it."""
        self._error(head, start, end, out, TRUNCATED)
        self.consumed = end

    # --- flushing -----------------------------------------------------------------------

    def flush_due(self, out: list[Record], now: float | None = None) -> None:
        """Emit joins older than their timeout, flagged partial (the line's end never came)."""
        if not self.active and self.multi is None:
            return
        self.now = now = time.monotonic() if now is None else now
        for stream, j in self.joiners.items():
            if j.start >= 0 and now - j.since >= self.flush_timeout:
                self._flush_joiner(stream, j, out)
        if self.multi is not None:
            for stream, m in self.multi.items():
                if m.active and now - m.group.last >= self.multiline_timeout:
                    self._emit_event(stream, m, out)

    def finish(self, tail: bytes, out: list[Record]) -> None:
        """End of a file that will not grow (rotated away): its unterminated rest is an
        entry of its own, and every join still open is emitted as it is."""
        self.now = time.monotonic()
        if tail:
            end = self.consumed + len(tail)
            if self.fmt is None:
                self.fmt = detect_format(self.path, tail)
            # the writer died mid-line: parse it as a line if it is one, else ship it raw
            if self.fmt == "json-file":
                self._json_line(tail, self.consumed, end, out)
            else:
                self._cri_line(tail, self.consumed, end, out)
            self.consumed = end
        for stream, j in self.joiners.items():
            if j.start >= 0:
                self._flush_joiner(stream, j, out)
        if self.multi is not None:
            for stream, m in self.multi.items():
                if m.active:
                    self._emit_event(stream, m, out)

    def _flush_joiner(self, stream: str, j: Joiner, out: list[Record]) -> None:
        self.active -= 1
        ns, start, end = j.time_ns, j.start, j.end
        msg, truncated = j.take()
        if isinstance(msg, bytes):
            msg = _text(msg)
        self._emit(ns, msg, stream, start, end, PARTIAL | (TRUNCATED if truncated else 0), out)

    def _emit_event(self, stream: str, m: Multiline, out: list[Record]) -> None:
        event = m.take()
        if event is not None:
            ns, msg, end, flags = event
            if end > self.skip:
                out.append(Record(ns, msg, stream, end, flags, self.origin))

