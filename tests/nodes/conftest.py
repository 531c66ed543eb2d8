"""Node fixtures: each node boots once per session and runs its whole in-guest suite;
every check it reports becomes one test here (``test_node1.py``, ``test_node2.py``).

A machine without qemu/debootstrap fails with one line naming what is missing. Timings
(image build, each boot) go to ``$BOXWATCH_NODE_REPORT``
(``/tmp/boxwatch-nodes-report.json``) and the terminal summary.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.nodes import harness

REPORT = Path(os.environ.get("BOXWATCH_NODE_REPORT", "/tmp/boxwatch-nodes-report.json"))
_timings: dict[str, Any] = {}


@pytest.fixture(scope="session")
def node_image() -> harness.Image:
    missing = harness.missing_tools()
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        image = harness.build_image()
    except harness.NodeError as exc:
        pytest.fail(str(exc), pytrace=False)
    _timings["image_built_now"] = image.built_now
    _timings["image_build_s"] = round(image.build_seconds, 1)
    return image


def boot_node(image: harness.Image, node: str, script: str, init: str) -> harness.Boot:
    work = Path(tempfile.mkdtemp(prefix=f"boxwatch-{node}-"))
    try:
        result = harness.boot(node, image, work, script, init)
    except harness.NodeError as exc:
        pytest.fail(f"{node}: {exc}", pytrace=False)
    _timings[f"{node}_boot_s"] = round(result.seconds, 1)
    _timings[f"{node}_numbers"] = result.results.get("numbers", {})
    REPORT.write_text(json.dumps(_timings, indent=1))
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        terminalreporter.write_line(f"node timings: {json.dumps(_timings)}")
