"""Node 2 (cgroup v2 without systemd, dockerd with cgroupfs): one boot, one test
per in-guest check (tests/nodes/guest/node2.py says what each proves)."""

from __future__ import annotations

import pytest

from tests.nodes import harness
from tests.nodes.guest import node2
from tests.nodes.session import boot_node, expect

pytestmark = pytest.mark.nodes
NODE = ("node2", node2.RUN, "script")  # what conftest boots, in parallel with the others


@pytest.fixture(scope="module")
def node(node_image: harness.Image) -> harness.Boot:
    return boot_node(node_image, *NODE)


@pytest.mark.parametrize("check", node2.SUITE.names)
def test_node2(node: harness.Boot, check: str) -> None:
    expect(node, check)
