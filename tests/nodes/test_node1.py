"""Node 1 (cgroup v2, systemd PID 1, Docker's systemd cgroup driver): one boot, one test
per in-guest check (tests/nodes/guest/node1.py says what each proves)."""

from __future__ import annotations

import pytest

from tests.nodes import harness
from tests.nodes.guest import node1
from tests.nodes.session import boot_node, expect

pytestmark = pytest.mark.nodes
NODE = ("node1", node1.RUN, "systemd")  # what conftest boots, in parallel with the others


@pytest.fixture(scope="module")
def node(node_image: harness.Image) -> harness.Boot:
    return boot_node(node_image, *NODE)


@pytest.mark.parametrize("check", node1.SUITE.names)
def test_node1(node: harness.Boot, check: str) -> None:
    expect(node, check)
