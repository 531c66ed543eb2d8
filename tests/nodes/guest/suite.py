"""What runs inside a node: named checks, run in order, each recorded as it finishes.

A node boots once and runs its whole suite; the host turns each entry of
``results.json`` into one pytest test, so a failure is named. A check returns a detail
string (what it measured) or raises; the file is rewritten after every check, so a guest
that hangs still reports what it finished. Standard library only (plus the project).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.wait import wait_until

Check = Callable[[dict[str, Any]], str | None]
PAYLOAD = Path("/mnt/payload")
BOX = str(PAYLOAD / "bin/box")
BOXWATCH = str(PAYLOAD / "bin/boxwatch")


class Suite:
    """Checks in registration order; ``names`` is what the host expects back."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def check(self, name: str) -> Callable[[Check], Check]:
        def register(fn: Check) -> Check:
            self.checks[name] = fn
            return fn

        return register

    @property
    def names(self) -> list[str]:
        return list(self.checks)

    def run(self, out: Path) -> None:
        ctx: dict[str, Any] = {"numbers": {}}
        doc: dict[str, Any] = {"checks": {}, "numbers": ctx["numbers"]}
        for name, fn in self.checks.items():
            t0 = time.monotonic()
            print(f"== {name}", flush=True)
            try:
                detail, ok = fn(ctx) or "", True
            except AssertionError as exc:
                detail, ok = str(exc) or traceback.format_exc(limit=3), False
            except Exception:
                detail, ok = traceback.format_exc(limit=6), False
            seconds = round(time.monotonic() - t0, 1)
            print(f"   {'ok' if ok else 'FAILED'} ({seconds} s): {detail}", flush=True)
            _console(f"boxwatch-node: {name} {'ok' if ok else 'FAILED'} ({seconds} s)")
            doc["checks"][name] = {"ok": ok, "detail": detail, "seconds": seconds}
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=1))
            os.replace(tmp, out)


def _console(line: str) -> None:
    """Progress on the serial console, which the host can read while the guest runs."""
    try:
        with open("/dev/console", "w") as f:
            f.write(line + "\n")
    except OSError:
        pass


def sh(
    *argv: str, check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure (with ``check``) raise with its stderr."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc


def out(*argv: str, **kw: Any) -> str:
    return sh(*argv, **kw).stdout.strip()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def engine(path: str) -> Any:
    """GET ``path`` from the Docker engine API (what ``docker stats``/``inspect`` read)."""
    conn = _UnixConnection("/run/docker.sock")
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, f"docker API {path}: {resp.status} {body[:200]!r}"
        return json.loads(body)
    finally:
        conn.close()


def collector_once(*roots: str, labels: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """What ``boxwatch collector --once --root ROOT...`` prints (the same code: Discovery,
    one Pipeline tick, ``sample_to_dict``), run in this process: a Python start costs
    seconds under TCG. The long-running checks start the real command."""
    import orjson

    from collector.api import dumps, sample_to_dict
    from collector.discover import Discovery
    from collector.pipeline import Pipeline

    errors: list[str] = []
    pipeline = Pipeline(Discovery(roots, "/sys/fs/cgroup", labels), [], history=0, spec_every=1,
                        on_error=errors.append)
    try:
        samples = pipeline.tick()
        read_errors = pipeline.stats.read_errors_total
    finally:
        pipeline.close()
    assert read_errors == 0, f"collector read errors: {read_errors}: {errors}"
    return [orjson.loads(dumps(sample_to_dict(s))) for s in samples]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60,
             every: float = 0.5) -> Any:
    """The host tests' wait (tests/support/wait.py), with what it waits for first."""
    return wait_until(predicate, timeout, what, step=every)


def fetch(url: str) -> str:
    """GET ``url``; "" when it does not answer 200 (yet)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def close(a: float, b: float, rel: float, absolute: float) -> bool:
    return abs(a - b) <= max(absolute, rel * max(abs(a), abs(b)))


def main(suite: Suite) -> None:
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else PAYLOAD / "results/results.json"
    suite.run(out_path)
