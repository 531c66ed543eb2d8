"""The collector bench's containers: N cgroup groups ``/box/bench-<i>`` made with the
runtime's driver for this host (v1, or v2 on a pure v2 root such as the node tests'
guests), each holding a process (optionally in its own network namespace), and
a box-style state root describing them, so discovery, net/dev and the readers all do
their real work. ``Fleet.remove`` takes everything away again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from runtime.cgroups import open_driver
from runtime.cgroups.base import Resources

CGROUP_ROOT = "/sys/fs/cgroup"


class BenchGroups:
    """Discovery factory: ``/box/bench-<i>`` is the container with the id we gave it."""

    source = "box"

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def handle(self, cgroup: str) -> str | None:
        return self.ids.get(cgroup)


class Fleet:
    """The bench containers: cgroups, sleeping processes, state files; ``remove`` all."""

    def __init__(self, root: Path, factory: BenchGroups, limited: bool = True,
                 own_netns: bool = True, active: bool = False) -> None:
        self.root = root
        self.resources = (Resources(memory=256 << 20, nano_cpus=1_000_000_000, pids_limit=1000)
                          if limited else Resources())
        # idle: a sleeping process; active: a shell that wakes every 0.5 s (a fork and an
        # exec: cpu usage, pids and memory move between samples, as in a working service)
        work = ["sh", "-c", "while :; do sleep 0.5; done"] if active else ["sleep", "3600"]
        self.argv = ["unshare", "--net", *work] if own_netns else work
        self.factory = factory
        self.driver = open_driver(CGROUP_ROOT)
        self.groups: dict[str, dict[str, str]] = {}  # id -> paths
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def add(self, name: str, with_process: bool) -> str:
        cid = os.urandom(32).hex()
        paths = self.driver.create(f"box/{name}", self.resources)
        self.groups[cid] = paths
        pid = 0
        if with_process:
            proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
            self.procs[cid] = proc
            self.driver.attach(paths, proc.pid)
            pid = proc.pid
        self.factory.ids[f"/box/{name}"] = cid
        cdir = self.root / "containers" / cid
        cdir.mkdir(parents=True)
        state = {
            "ID": cid, "Name": f"/{name}", "Created": "2026-01-01T00:00:00Z",
            "Config": {"Image": "bench", "Labels": {"bench": "1"}},
            "State": {"Running": True, "Pid": pid, "StartedAt": "2026-01-01T00:00:00Z"},
            "Box": {"CgroupPaths": paths, "CgroupVersion": self.driver.version},
        }
        tmp = cdir / "config.v2.json.tmp"
        tmp.write_text(json.dumps(state))
        tmp.rename(cdir / "config.v2.json")
        return cid

    def drop(self, cid: str) -> None:
        proc = self.procs.pop(cid, None)
        if proc is not None:
            proc.kill()
            proc.wait()
        paths = self.groups.pop(cid)
        shutil.rmtree(self.root / "containers" / cid, ignore_errors=True)
        self.driver.destroy(paths)

    def remove(self) -> None:
        for proc in self.procs.values():
            proc.kill()
        for cid in list(self.groups):
            self.drop(cid)
        self.factory.ids.clear()
