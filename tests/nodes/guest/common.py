"""Facts about the node and the test images both nodes need."""

from __future__ import annotations

import os
from pathlib import Path

from tests.nodes.guest.suite import BOX, out, sh
from tests.support.busybox import build_busybox_tar

TAR = Path("/tmp/busybox.tar")


def node_facts() -> dict[str, str]:
    """cgroup v2 at the root (asserted), the controllers, and what PID 1 is."""
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    assert controllers.exists(), "no cgroup v2 at /sys/fs/cgroup"
    assert not Path("/sys/fs/cgroup/memory").is_dir(), "a v1 memory hierarchy is mounted"
    return {"pid1": Path("/proc/1/comm").read_text().strip(),
            "controllers": controllers.read_text().strip(),
            "kernel": os.uname().release}


def import_images(box: bool) -> str:
    """busybox (Debian's busybox-static as a rootfs tarball) into Docker and, if asked,
    into box. No registry is reachable from the guest."""
    if not TAR.exists():
        build_busybox_tar(TAR)
    sh("docker", "import", str(TAR), "busybox")
    done = ["docker"]
    if box:
        sh(BOX, "import", str(TAR), "busybox")
        done.append("box")
    return f"busybox imported into {' and '.join(done)} ({TAR.stat().st_size} bytes)"


def box_inspect(ref: str, fmt: str) -> str:
    return out(BOX, "inspect", "-f", fmt, ref)
