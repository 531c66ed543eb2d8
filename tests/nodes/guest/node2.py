"""Node 2: cgroup v2 without systemd (PID 1 is a script), dockerd with
``native.cgroupdriver=cgroupfs``: containers in ``/docker/<id>``. The collector's names
and numbers, as on node 1; then the checks that do not depend on the cgroup layout
(tests/nodes/guest/engine_checks.py: the shipper, interop with the engine), here because
node 1's systemd boot makes it the longer of the two."""

from __future__ import annotations

import json
from typing import Any

from tests.nodes.guest import common, docker_view, engine_checks
from tests.nodes.guest.suite import Suite, main, out

SUITE = Suite()

# dockerd is started by run-node.sh with these flags (no systemd to start it)
RUN = """#!/bin/sh
export PATH=/mnt/payload/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
containerd > /tmp/containerd.log 2>&1 &
dockerd --exec-opt native.cgroupdriver=cgroupfs --iptables=false > /tmp/dockerd.log 2>&1 &
for i in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
export PYTHONPATH=/mnt/payload/src:/mnt/payload/site
cd /mnt/payload/src && python3 -m tests.nodes.guest.node2
rc=$?
cp /tmp/dockerd.log /tmp/shipper.log /mnt/payload/results/ 2>/dev/null
exit $rc
"""


common.register(SUITE, systemd=False, cgroup_driver="cgroupfs")
docker_view.register(SUITE, "/docker/{id}")


@SUITE.check("collector_cost_on_v2")
def cost(ctx: dict[str, Any]) -> str:
    """bench/collector.py on v2 groups made by box's V2Driver: the collector's cpu per
    container-sample beside the v2 read floor (one pread of each file it reads), measured
    in the same run; TCG inflates both, the ratio is what compares."""
    doc = json.loads(out("python3", "/mnt/payload/src/bench/collector.py", "--containers", "20",
                         "--ticks", "5", "--rounds", "2", "--scrape15-rounds", "0",
                         timeout=300))
    ratio = doc["us_per_sample"] / doc["read_floor_us"]
    ctx["numbers"]["collector_v2"] = {k: doc[k] for k in (
        "containers", "tick_us", "read_us", "read_floor_us", "floor_us", "us_per_sample",
        "reads_per_container", "files_per_container")}
    ctx["numbers"]["collector_v2"]["us_per_sample_over_read_floor"] = round(ratio, 2)
    ctx["numbers"]["collector_v2"]["tick_over_read_floor"] = round(
        doc["tick_us"] / doc["read_floor_us"], 2
    )
    return json.dumps(ctx["numbers"]["collector_v2"])


engine_checks.register(SUITE)

if __name__ == "__main__":
    main(SUITE)
