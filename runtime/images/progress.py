"""Per-layer progress lines for load, pull and push, drawn like docker's on a TTY.

One line per layer (``a1b2c3d4e5f6: Downloading [=====>     ]  1.2MB/3.4MB``), updated in
place with cursor moves; nothing but the final summary is printed when the stream is
not a terminal, so logs and pipes stay clean. Thread-safe: pull and push work on
several layers at once.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

_WIDTH = 50
_INTERVAL = 0.1  # seconds between redraws of one line


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def bar(done: int, total: int) -> str:
    """``[=====>      ]  1.2MB/3.4MB``; a byte count alone when the total is unknown."""
    if total <= 0:
        return _human(done)
    filled = min(_WIDTH, int(_WIDTH * done / total))
    arrow = ("=" * filled + (">" if filled < _WIDTH else "")).ljust(_WIDTH)
    return f"[{arrow}] {_human(done):>7}/{_human(total)}"


class Progress:
    """Lines keyed by layer (short ID); redrawn in place on a TTY, silent otherwise."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self._keys: list[str] = []
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, key: str, action: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last.get(key, 0.0) < _INTERVAL:
            return
        self._last[key] = now
        self.status(key, f"{action} {bar(done, total)}")

    def status(self, key: str, text: str) -> None:
        """Replaces the line of ``key`` (appending it the first time)."""
        if not self.enabled:
            return
        with self._lock:
            line = f"{key}: {text}"
            if key not in self._keys:
                self._keys.append(key)
                self.stream.write(line + "\n")
            else:
                up = len(self._keys) - self._keys.index(key)
                self.stream.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line printed whether or not this is a TTY (summaries, digests)."""
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()
            if self.enabled:
                self._keys = []  # lines above are history now
