"""Node 1 (cgroup v2, systemd PID 1, Docker's systemd cgroup driver) and node 2 (cgroup v2
without systemd, dockerd with cgroupfs): one boot per node, one test per in-guest check
(tests/nodes/guest/node1.py and node2.py say what each proves). ``-k node1`` runs one."""

from __future__ import annotations

import pytest

from tests.nodes import harness
from tests.nodes.session import NODES, boot_node, expect

pytestmark = [pytest.mark.nodes, pytest.mark.timeout(harness.TEST_TIMEOUT)]
CASES = [(name, check) for name, (guest, _) in NODES.items() for check in guest.SUITE.names]


@pytest.fixture(scope="module")
def node(node_image: harness.Image, request: pytest.FixtureRequest) -> harness.Boot:
    return boot_node(node_image, request.param)


@pytest.mark.parametrize(("node", "check"), CASES, indirect=["node"],
                         ids=[f"{n}-{c}" for n, c in CASES])
def test_node(node: harness.Boot, check: str) -> None:
    expect(node, check)
