"""The runtime's and the collector's kernel tests that need real v2 files (``needs_v2``:
skipped on this hybrid host), run in node 1 under the guest's pytest: one host test per
guest test, read from the JUnit file node 1 brings back. A guest test that failed fails
here with its assertion and the tail of the guest's pytest output; one that skipped there
fails too (node 1 is pure v2: nothing may skip)."""

from __future__ import annotations

import pytest

from tests.nodes import harness, junit
from tests.nodes.guest import node1
from tests.nodes.session import boot_node

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(harness.TEST_TIMEOUT)]
CASES = junit.expected(harness.REPO, node1.PYTEST_FILES)


@pytest.fixture(scope="module")
def node(node_image: harness.Image, request: pytest.FixtureRequest) -> harness.Boot:
    return boot_node(node_image, request.param)


@pytest.fixture(scope="module")
def outcomes(node: harness.Boot) -> dict[str, junit.Outcome]:
    return junit.parse(node.file("v2-junit.xml"))


def _tail(node: harness.Boot, lines: int = 30) -> str:
    text = node.file("v2-pytest.log")
    if not text:
        return node.tail()
    return "--- node1 pytest output, last lines ---\n" + "\n".join(text.splitlines()[-lines:])


@pytest.mark.parametrize(("node", "case"), [("node1", c) for c in CASES], indirect=["node"],
                         ids=CASES)
def test_in_node1(node: harness.Boot, outcomes: dict[str, junit.Outcome], case: str) -> None:
    got = outcomes.get(case)
    if got is None:
        why = node.error or "not in node 1's JUnit file"
        pytest.fail(f"node1: {case} did not run: {why}\n{_tail(node)}", pytrace=False)
    if got.status == "skipped":
        pytest.fail(f"node1: {case} skipped on a pure-v2 node: {got.message}", pytrace=False)
    if got.status != "passed":
        detail = "\n".join(got.detail.splitlines()[-25:])
        pytest.fail(f"node1: {case} {got.status} in the guest ({got.seconds:.1f} s): "
                    f"{got.message}\n{detail}\n{_tail(node)}", pytrace=False)
