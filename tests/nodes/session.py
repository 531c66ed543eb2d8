"""The node tests' session state, in one module both conftest.py and the test modules
import (pytest loads conftest.py under another name, so state kept there would exist
twice): which nodes the session selected, their boots (in parallel, in threads), and the
timings reported.

The nodes selected for the session boot in parallel, all started when the first one is
asked for (``BOXWATCH_NODE_PARALLEL=0``: one after the other): under TCG a guest spends
much of its time waiting on its own sleeps, dockerd and container starts, so two guests
on two host cores finish well before two boots in a row (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.nodes import harness
from tests.nodes.guest import node1, node2

REPORT = Path(os.environ.get("BOXWATCH_NODE_REPORT", "/tmp/boxwatch-nodes-report.json"))
PARALLEL = os.environ.get("BOXWATCH_NODE_PARALLEL", "1") != "0"
# node -> (its guest module, how it boots)
NODES = {"node1": (node1, "systemd"), "node2": (node2, "script")}
timings: dict[str, Any] = {}
selected: set[str] = set()  # the nodes of the collected tests
_boots: dict[str, Future[harness.Boot]] = {}
pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="node-boot")
_started_at: list[float] = []


def _boot(image: harness.Image, node: str) -> harness.Boot:
    guest, init = NODES[node]
    work = Path(tempfile.mkdtemp(prefix=f"boxwatch-{node}-"))
    result = harness.boot(node, image, work, guest.RUN, init, getattr(guest, "PAYLOAD_FILES", ()))
    timings[f"{node}_boot_s"] = round(result.seconds, 1)
    timings[f"{node}_numbers"] = result.results.get("numbers", {})
    timings["boots_wall_s"] = round(time.monotonic() - _started_at[0], 1)
    return result


def boot_node(image: harness.Image, node: str) -> harness.Boot:
    """Boot ``node`` (and, in parallel, every other selected node not yet booted); wait
    for ``node``'s results."""
    try:
        harness.site_packages()  # built once here, not by two boots at the same time
    except harness.NodeError as exc:
        pytest.fail(f"{node}: {exc}", pytrace=False)
    if not _started_at:
        _started_at.append(time.monotonic())
    for name in (selected if PARALLEL else set()) | {node}:
        if name not in _boots:
            _boots[name] = pool.submit(_boot, image, name)
    try:
        result = _boots[node].result()
    except harness.NodeError as exc:
        pytest.fail(f"{node}: {exc}", pytrace=False)
    REPORT.write_text(json.dumps(timings, indent=1))
    return result


def expect(result: harness.Boot, name: str) -> None:
    """Fail with what failed and the guest's log tail, unless check ``name`` passed."""
    checks = result.results.get("checks", {})
    entry = checks.get(name)
    if entry is None:
        why = result.error or "the guest's suite stopped before it"
        pytest.fail(f"{result.node}: check {name} did not run: {why}\n{result.tail()}",
                    pytrace=False)
    if not entry["ok"]:
        pytest.fail(f"{result.node}: {name} failed: {entry['detail']}\n{result.tail()}",
                    pytrace=False)


