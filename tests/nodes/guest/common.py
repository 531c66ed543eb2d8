"""Facts about the node and the test images both nodes need."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.nodes.guest.suite import BOX, Suite, out, sh
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


def import_images() -> str:
    """busybox (Debian's busybox-static as a rootfs tarball) into Docker and into box. No
    registry is reachable from the guest."""
    if not TAR.exists():
        build_busybox_tar(TAR)
    sh("docker", "import", str(TAR), "busybox")
    sh(BOX, "import", str(TAR), "busybox")
    return f"busybox imported into docker and box ({TAR.stat().st_size} bytes)"


def register(suite: Suite, systemd: bool, cgroup_driver: str) -> None:
    """The first two checks of every node: its layout (PID 1 systemd or not, Docker's
    cgroup driver on cgroup v2) and the test image in both engines."""

    @suite.check("node_layout")
    def layout(ctx: dict[str, Any]) -> str:
        facts = node_facts()
        assert (facts["pid1"] == "systemd") == systemd, facts
        driver = out("docker", "info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}")
        assert driver == f"{cgroup_driver} 2", f"docker info: {driver}"
        return f"{facts}; docker {driver}"

    @suite.check("images")
    def images(ctx: dict[str, Any]) -> str:
        return import_images()


def box_inspect(ref: str, fmt: str) -> str:
    return out(BOX, "inspect", "-f", fmt, ref)
