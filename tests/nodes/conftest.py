"""Node fixtures: each node boots once per session and runs its whole in-guest suite;
every check it reports becomes one test (``test_nodes.py``).
The selected nodes boot in parallel (tests/nodes/session.py).

A machine without qemu/debootstrap fails with one line naming what is missing. Timings
(image build, each boot, the wall time of the boots) go to ``$BOXWATCH_NODE_REPORT``
(``/tmp/boxwatch-nodes-report.json``) and the terminal summary.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.nodes import harness, session


@pytest.hookimpl(trylast=True)  # after -k and -m deselected what they deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    """Which nodes this session runs: those of the selected tests. On a machine that
    cannot boot them, one node test stays and fails with the one-line reason; the others
    are deselected rather than failing the same way thirty times."""
    ours = [item for item in items if item.get_closest_marker("nodes")]
    if ours and harness.missing_tools():
        config.hook.pytest_deselected(items=ours[1:])
        items[:] = [item for item in items if item not in ours[1:]]
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("node") if callspec else None
        if name in session.NODES:
            session.selected.add(name)


@pytest.fixture(scope="session")
def node_image() -> harness.Image:
    missing = harness.missing_tools()
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        image = harness.build_image()
    except harness.NodeError as exc:
        pytest.fail(str(exc), pytrace=False)
    session.timings["image_built_now"] = image.built_now
    session.timings["image_build_s"] = round(image.build_seconds, 1)
    return image


def pytest_sessionfinish() -> None:
    harness.kill_all()  # a guest the session no longer waits for (^C, a failed fixture)
    session.pool.shutdown(wait=True, cancel_futures=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if session.timings:
        terminalreporter.write_line(f"node timings: {json.dumps(session.timings)}")
