"""``box build --progress plain``: BuildKit's plain progress shape (its progressui text
printer), on stderr as docker writes it. Each step that makes a filesystem change
(FROM an image, RUN, COPY, ADD, WORKDIR) is a vertex ``#N [stage k/n] INSTR``; its
output lines are ``#N <seconds> line``; it ends ``#N CACHED``, ``#N DONE 0.1s`` or
``#N ERROR: ...``; vertices are separated by a blank line. Metadata instructions
(ENV, LABEL, CMD...) are no vertex, as in BuildKit. The default (``auto``) stays
docker's classic builder output (``Step N/M``), the shape ``DOCKER_BUILDKIT=0`` prints."""

from __future__ import annotations

import math
import os
import threading
import time
from typing import IO

VERTEX_INSTRUCTIONS = ("RUN", "COPY", "ADD", "WORKDIR")


def stage_prefix(stage_name: str, index: int, total: int) -> str:
    """``[build 2/5] `` as BuildKit's prefixCommand: the index padded to the width of
    the total; no stage name when the Dockerfile has one stage."""
    width = int(1 + math.log10(total)) if total > 0 else 1
    name = f"{stage_name} " if stage_name else ""
    return f"[{name}{index:>{width}}/{total}] "


def full_reference(ref: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``, as BuildKit names a base."""
    from runtime.images import manifest as mf
    from runtime.images.reference import parse_ref

    name, tag = parse_ref(ref.partition("@")[0])
    domain, path = mf.split_domain(name)
    digest = ref.partition("@")[2]
    return f"{domain}/{path}" + (f"@{digest}" if digest else f":{tag}")


class PlainProgress:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.number = 0
        self.open = False  # a vertex waits for its CACHED / DONE / ERROR
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self.lock:
            self.stream.write(text)
            self.stream.flush()

    def vertex(self, name: str) -> None:
        self.number += 1
        self.open = True
        self.started = time.monotonic()
        self._write(("\n" if self.number > 1 else "") + f"#{self.number} {name}\n")

    def status(self, text: str) -> None:
        self._write(f"#{self.number} {text}\n")

    def log(self, line: str) -> None:
        self._write(f"#{self.number} {time.monotonic() - self.started:.3f} {line}\n")

    def _end(self, text: str) -> None:
        if self.open:
            self.open = False
            self._write(f"#{self.number} {text}\n")

    def cached(self) -> None:
        self._end("CACHED")

    def done(self) -> None:
        self._end(f"DONE {time.monotonic() - self.started:.1f}s")

    def error(self, message: str) -> None:
        self._end(f"ERROR: {message}")

    def simple(self, name: str, *statuses: str) -> None:
        """A vertex with status lines that is done at once (the [internal] ones)."""
        self.vertex(name)
        for text in statuses:
            self.status(text)
        self.done()


class LinePump:
    """The step container's output (fds 1 and 2, which its monitor inherits) through a
    pipe, each line handed to ``sink``; ``close`` waits for the last line."""

    def __init__(self, sink: PlainProgress) -> None:
        self.sink = sink
        self.read_fd, self.write_fd = os.pipe()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while chunk := os.read(self.read_fd, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.sink.log(line.decode(errors="replace"))
        if pending:
            self.sink.log(pending.decode(errors="replace"))
        os.close(self.read_fd)

    def close_writer(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_writer()
        self.thread.join(timeout=30)
