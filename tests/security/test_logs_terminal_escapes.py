"""Attack: a container logs terminal escape sequences (retitle the window, clear the
screen, rewrite what was shown, OSC 52 to set the clipboard) and ``boxwatch logs`` wrote
them raw to the admin's terminal. Control characters are now shown escaped."""

from __future__ import annotations

import io
import time

from boxwatch.logs.cli import Printer
from boxwatch.logs.query import LogEntry

HOSTILE = "ok \x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBldmls\x07\r\x9b31m done\ttab"


def test_logs_show_escape_sequences_escaped() -> None:
    out = io.StringIO()
    Printer(out, colour=False).print([LogEntry(time.time_ns(), "web\x1b[1m", "h", "stdout",
                                               HOSTILE)])
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    body = text[:-1]
    assert not any(ord(c) < 0x20 and c != "\t" or 0x7F <= ord(c) < 0xA0 for c in body), body
    assert "\\x1b]0;pwned\\x07" in body and "\\x9b31m" in body and "\ttab" in body
