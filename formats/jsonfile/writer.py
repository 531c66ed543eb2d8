"""The one writer of Docker's json-file log format, with Docker's rotation.

Byte-for-byte what dockerd writes (moby ``daemon/logger/jsonfilelog``):
``{"log":"hello\\n","stream":"stdout","time":"2024-05-01T10:11:12.123456789Z"}`` + newline,
strings escaped like ``jsonlog.ffjsonWriteJSONBytesAsString`` (HTML-safe ``<>&``, ``\\u2028``,
``\\u2029``, one ``\\ufffd`` per invalid UTF-8 byte, ``\\n``/``\\r`` short forms and ``\\u00XX`` for
every other control byte, tab included). :class:`LineSplitter` cuts raw pipe reads into lines
and 16 KiB partials exactly like moby's ``logger.Copier``. Rotation follows
``loggerutils.LogFile``: before a write, if the file already holds ``max_size`` bytes or more,
``.N-1`` is dropped, ``.i`` becomes ``.i+1``, the live file becomes ``.1`` (gzipped in the
background to ``.1.gz`` with compress) and a fresh live file is opened.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
import zlib
from collections.abc import Callable

from formats.lazyre import lazy_compile
from formats.units import rfc3339nano

DEFAULT_MAX_CHUNK = 16 * 1024  # moby logger.defaultBufSize
FILE_MODE = 0o640  # moby creates json logs 0640
_ZERO_GO_TIME = "0001-01-01T00:00:00Z"  # json of Go's zero time.Time (no entry written yet)

# --- escaping -----------------------------------------------------------------------------

_HEX = "0123456789abcdef"


def _escape_table(go_encoding_json: bool) -> dict[str, str]:
    table = {chr(b): "\\u00" + _HEX[b >> 4] + _HEX[b & 0xF] for b in range(0x20)}
    table.update({"\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\",
                  "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                  "\u2028": "\\u2028", "\u2029": "\\u2029"})
    if go_encoding_json:  # encoding/json (attrs) also has \t \b \f short forms
        table.update({"\t": "\\t", "\b": "\\b", "\f": "\\f"})
    # surrogateescape maps each invalid UTF-8 byte to one lone surrogate: Go's
    # utf8.DecodeRune also rejects exactly one byte at a time, so one \ufffd each.
    table.update({chr(0xDC80 + i): "\\ufffd" for i in range(128)})
    return table


_LOG_ESC = _escape_table(go_encoding_json=False)
_ATTR_ESC = _escape_table(go_encoding_json=True)
_ASCII_SPECIAL = lazy_compile(rb'[\x00-\x1f"\\<>&]')
_STR_SPECIAL = lazy_compile('[\x00-\x1f"\\\\<>&\u2028\u2029\udc80-\udcff]')
_ASCII_ESC = {k.encode(): v.encode() for k, v in _LOG_ESC.items() if ord(k) < 0x80}


def _ascii_sub(m: re.Match[bytes]) -> bytes:
    return _ASCII_ESC[m.group()]


def _str_sub(m: re.Match[str]) -> str:
    return _LOG_ESC[m.group()]


def _attr_sub(m: re.Match[str]) -> str:
    return _ATTR_ESC[m.group()]


def escape_bytes(data: bytes) -> bytes:
    """The inside of a JSON string for ``data``, escaped exactly as dockerd does."""
    if data.isascii():
        return _ASCII_SPECIAL.sub(_ascii_sub, data)
    text = data.decode("utf-8", "surrogateescape")
    return _STR_SPECIAL.sub(_str_sub, text).encode("utf-8")


def _attrs_json(attrs: dict[str, str]) -> bytes:
    """Go ``json.Marshal(map[string]string)``: keys sorted, compact, HTML-safe."""
    def q(s: str) -> str:
        return '"' + _STR_SPECIAL.sub(_attr_sub, s) + '"'
    return ("{" + ",".join(f"{q(k)}:{q(attrs[k])}" for k in sorted(attrs)) + "}").encode()


class _TimeFormatter:
    """RFC3339Nano in UTC, trimmed like Go; caches the per-second prefix (hot path)."""

    __slots__ = ("_secs", "_prefix")

    def __init__(self) -> None:
        self._secs = -1
        self._prefix = ""

    def __call__(self, ns: int) -> str:
        secs, frac = divmod(ns, 1_000_000_000)
        if secs != self._secs:
            self._secs = secs
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        if frac:
            return f"{self._prefix}.{frac:09d}".rstrip("0") + "Z"
        return self._prefix + "Z"


def _middle(stream: str, attrs_json: bytes) -> bytes:
    """The constant fields between ``log`` and ``time``, each followed by a comma."""
    out = b""
    if stream:
        out += b'"stream":"' + escape_bytes(stream.encode("utf-8", "surrogateescape")) + b'",'
    if attrs_json:
        out += b'"attrs":' + attrs_json + b","
    return out


def _encode(data: bytes, middle: bytes, ts: bytes) -> bytes:
    if not data:  # moby omits an empty "log"
        return b"{" + middle + b'"time":"' + ts + b'"}\n'
    if data[-1] == 10 and data.isascii() and _ASCII_SPECIAL.search(data, 0, len(data) - 1) is None:
        esc = data[:-1] + b"\\n"  # the common line: nothing to escape but its newline
    else:
        esc = escape_bytes(data)
    return b'{"log":"' + esc + b'",' + middle + b'"time":"' + ts + b'"}\n'


def encode_line(stream: str, data: bytes, time_ns: int,
                attrs: dict[str, str] | None = None) -> bytes:
    """One json-file line (with its trailing newline), fields in dockerd's order."""
    middle = _middle(stream, _attrs_json(attrs) if attrs else b"")
    return _encode(data, middle, _TimeFormatter()(time_ns).encode())


# --- writer ---------------------------------------------------------------------------------

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class JsonFileWriter:
    """Appends json-file lines through an unbuffered fd (a crash loses nothing written)
    and rotates like dockerd. Not thread-safe: one monitor thread owns it."""

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1,
                 compress: bool = False, attrs: dict[str, str] | None = None) -> None:
        if max_file < 1:
            raise ValueError(f"max-file cannot be less than 1 (got {max_file})")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.compress = compress and max_file > 1
        self._attrs_json = _attrs_json(attrs) if attrs else b""
        self._fmt_time = _TimeFormatter()
        self._middles: dict[str, bytes] = {}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        self._size = os.lseek(self._fd, 0, os.SEEK_END)
        self._last_ns: int | None = None
        self._compressor: threading.Thread | None = None  # noqa: F821 - lazy import
        self.compress_errors: list[OSError] = []
        self.dropped = 0  # lines lost to a full disk (ENOSPC, EDQUOT)
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes in the live file, kept in memory (no fstat per line)."""
        return self._size

    def write_line(self, stream: str, data: bytes, time_ns: int) -> None:
        """Write one entry: a whole line ending in ``b"\\n"`` or a partial chunk without."""
        if self._fd < 0:
            if self._closed:
                raise ValueError(f"log file {self.path!r} is closed")
            if not self._reopen():  # a rotation that met a full disk
                self.dropped += 1
                return
        middle = self._middles.get(stream)
        if middle is None:
            middle = self._middles[stream] = _middle(stream, self._attrs_json)
        line = _encode(data, middle, self._fmt_time(time_ns).encode())
        try:
            if self.max_size != -1 and self._size >= self.max_size:
                self._rotate()
            self._write_all(line)
        except OSError as e:
            if e.errno not in _DISK_FULL:
                raise
            self.dropped += 1  # as dockerd: a full disk costs lines, never the container
            return
        self._last_ns = time_ns

    def _reopen(self) -> bool:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               FILE_MODE)
        except OSError as e:
            if e.errno not in _DISK_FULL:
                raise
            return False
        self._size = os.lseek(self._fd, 0, os.SEEK_END)
        return True

    def _write_all(self, line: bytes) -> None:
        view = memoryview(line)
        start = self._size
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError:
                if self._size != start:  # no half line: the next one must still parse
                    os.ftruncate(self._fd, start)
                    self._size = start
                raise
            self._size += n
            view = view[n:]

    def _rotate(self) -> None:
        self._wait_compressor()  # moby's rotateMu: one rotation (and its gzip) at a time
        os.close(self._fd)
        self._fd = -1
        name = self.path
        if self.max_file < 2:
            _unlink_missing_ok(name)
        else:
            ext = ".gz" if self.compress else ""
            _unlink_missing_ok(f"{name}.{self.max_file - 1}{ext}")
            for i in range(self.max_file - 1, 1, -1):
                _rename_missing_ok(f"{name}.{i - 1}{ext}", f"{name}.{i}{ext}")
            _rename_missing_ok(name, name + ".1")
        self._fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                           FILE_MODE)
        self._size = 0
        if self.compress:
            import threading  # lazy: only rotation with compress=true needs it

            self._compressor = threading.Thread(
                target=self._compress_rotated, args=(name + ".1", self._last_ns),
                name="box-log-gzip", daemon=True)
            self._compressor.start()

    def _compress_rotated(self, src: str, last_ns: int | None) -> None:
        try:
            compress_file(src, last_ns)
        except OSError as err:  # kept for the monitor to report; logging must go on
            self.compress_errors.append(err)

    def _wait_compressor(self) -> None:
        if self._compressor is not None:
            self._compressor.join()
            self._compressor = None

    def close(self) -> None:
        """Close the live file and wait for a background gzip to finish."""
        self._closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._wait_compressor()

    def __enter__(self) -> JsonFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unlink_missing_ok(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename_missing_ok(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


def compress_file(src: str, last_ns: int | None) -> None:
    """``src`` -> ``src.gz`` with moby's gzip header extra ``{"lastTime":"..."}`` (readers
    use it to skip whole files for ``--since``), then remove ``src``. A missing ``src`` is
    fine (moby: nothing to compress)."""
    try:
        fin = open(src, "rb")  # closed by the with below, before the unlink
    except FileNotFoundError:
        return
    dst = src + ".gz"
    extra = json.dumps({"lastTime": rfc3339nano(last_ns) if last_ns is not None
                        else _ZERO_GO_TIME}, separators=(",", ":")).encode()
    try:
        with fin, open(dst, "wb") as fout:
            os.chmod(dst, FILE_MODE)
            # RFC 1952 header as Go's gzip.Writer writes it: FEXTRA, mtime 0, XFL 0, OS 255.
            fout.write(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"
                       + len(extra).to_bytes(2, "little") + extra)
            deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            crc, total = 0, 0
            while chunk := fin.read(1 << 20):
                crc = zlib.crc32(chunk, crc)
                total += len(chunk)
                fout.write(deflate.compress(chunk))
            fout.write(deflate.flush())
            fout.write(crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))
    except BaseException:
        _unlink_missing_ok(dst)
        raise
    os.unlink(src)


# --- splitting pipe reads into entries ---------------------------------------------------------

class LineSplitter:
    """Cuts a raw stream into json-file entries the way moby's Copier does: every
    ``\\n``-terminated line (newline kept); a line reaching ``max_chunk`` bytes without a
    newline is emitted in ``max_chunk`` pieces without newline (partials); ``flush()`` at
    EOF emits the unterminated rest, also without newline."""

    __slots__ = ("_emit", "_max", "_pending")

    def __init__(self, emit: Callable[[bytes], None], max_chunk: int = DEFAULT_MAX_CHUNK) -> None:
        if max_chunk < 1:
            raise ValueError(f"max_chunk must be positive, got {max_chunk}")
        self._emit = emit
        self._max = max_chunk
        self._pending = b""

    def feed(self, data: bytes) -> None:
        if self._pending:
            data = self._pending + data
        emit, mc, find = self._emit, self._max, data.find
        start, n = 0, len(data)
        while start < n:
            # moby's buffer holds max_chunk bytes: a newline must be among them.
            nl = find(b"\n", start, start + mc)
            if nl >= 0:
                emit(data[start:nl + 1])
                start = nl + 1
            elif n - start >= mc:
                emit(data[start:start + mc])
                start += mc
            else:
                break
        self._pending = data[start:]

    def flush(self) -> None:
        """At EOF: moby logs whatever is left as a (last) partial."""
        if self._pending:
            rest, self._pending = self._pending, b""
            self._emit(rest)


def stream_to_writer(writer: JsonFileWriter, stream: str,
                     clock: Callable[[], int] = time.time_ns,
                     max_chunk: int = DEFAULT_MAX_CHUNK) -> LineSplitter:
    """A splitter feeding ``writer`` for one stream, with moby's timestamps: a run of
    partials and the chunk ending it all carry the time of the first partial."""
    partial_ts: list[int] = []

    def emit(chunk: bytes) -> None:
        ts = partial_ts[0] if partial_ts else clock()
        if chunk[-1:] == b"\n":
            partial_ts.clear()
        elif not partial_ts:
            partial_ts.append(ts)
        writer.write_line(stream, chunk, ts)

    return LineSplitter(emit, max_chunk)
