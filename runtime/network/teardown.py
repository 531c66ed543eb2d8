"""Taking a whole box root off the network: for a root that is being thrown away (a test
session, a benchmark). Containers must be removed first."""

from __future__ import annotations

import contextlib
import os

from runtime.errors import BoxError
from runtime.paths import Paths


def teardown_root(paths: Paths) -> list[str]:
    """Delete every bridge this root owns (user networks and its default bridge), their
    NAT set entries and address pools; drop the nftables table if no root uses it any
    more. Returns the bridges deleted."""
    from runtime.network.bridge import Bridges, owner
    from runtime.network.ipam import Ipam
    from runtime.network.nft import Nft
    from runtime.network.store import NetworkStore, bridge_of, subnet_of

    root = os.path.abspath(paths.root)
    store = NetworkStore(paths.root)
    if not os.path.isdir(store.dir):
        return []
    bridges, nft, gone = Bridges(), Nft(), []
    for net in store.all():
        name = bridge_of(net)
        if net["Driver"] != "bridge" or not name:
            continue
        subnet, gateway = subnet_of(net)
        if owner(name) == root:
            bridges.delete(name, root)
            gone.append(name)
        with contextlib.suppress(BoxError):
            nft.delete_subnet(subnet)
        Ipam(paths.root, net["Id"], subnet, gateway).drop()
        store.delete(net)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(store.dir, ".predefined"))
    with contextlib.suppress(BoxError):
        nft.prune_orphans(bridges.carried_subnets())
    with contextlib.suppress(BoxError):
        if nft.delete_table_if_unused():
            bridges.restore_forwarding()  # the table that dropped non-box forwarding is gone
    return gone
