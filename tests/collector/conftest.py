"""Real cgroups for the collector's tests: ``box/test-<rand>`` groups that are always
removed again (processes killed first, then the groups, then empty ``box`` parents)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.cgroup2 import V2_CONTROLLERS

CGROUP = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids")
UNIFIED = CGROUP / "unified"
BUSY = [sys.executable, "-I", "-S", "-c", "while True: pass"]


@dataclass
class Group:
    """One test group: its directory per controller and the processes put in it."""

    name: str  # "/box/test-<rand>"
    paths: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def write(self, controller: str, file: str, value: str) -> None:
        Path(self.paths[controller], file).write_text(value)

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside every controller's group (joined before exec)."""
        procs_files = [os.path.join(p, "cgroup.procs") for p in self.paths.values()]

        def join() -> None:
            for f in procs_files:
                with open(f, "w") as fh:
                    fh.write(str(os.getpid()))

        proc = subprocess.Popen(argv, preexec_fn=join, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs.clear()
        # anything else that ended up in the group (children of the processes)
        for path in self.paths.values():
            try:
                pids = Path(path, "cgroup.procs").read_text().split()
            except FileNotFoundError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths.values():
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while killed tasks exit
                    time.sleep(0.02)
            parent = os.path.dirname(path)
            try:
                os.rmdir(parent)  # the `box` parent, when nothing else uses it
            except OSError:
                pass


def _make_v1(name: str, with_unified: bool) -> Group:
    paths: dict[str, str] = {}
    group = Group(name, paths)
    try:
        for ctrl in V1_CONTROLLERS:
            d = CGROUP / ctrl / name.strip("/")
            d.mkdir(parents=True)
            paths[ctrl] = str(d)
            if ctrl == "cpuset":  # a new cpuset is empty until given cpus and mems
                for parent in (d.parent, d):
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        value = (parent.parent / f).read_text().strip()
                        if not (parent / f).read_text().strip():
                            (parent / f).write_text(value)
        if with_unified:
            d = UNIFIED / name.strip("/")
            d.mkdir(parents=True)
            paths["unified"] = str(d)
    except BaseException:
        group.remove()
        raise
    return group


@pytest.fixture
def v1_group() -> Iterator[Callable[..., Group]]:
    """Factory of v1 groups (one dir per controller, optionally the unified side)."""
    made: list[Group] = []

    def make(with_unified: bool = False) -> Group:
        group = _make_v1(f"/box/test-{uuid.uuid4().hex[:12]}", with_unified)
        made.append(group)
        return group

    yield make
    for group in made:
        group.remove()


@pytest.fixture
def v2_group() -> Iterator[Group]:
    """A group on the hybrid host's unified mount (cpu.stat and PSI only: no controllers
    enabled there)."""
    d = UNIFIED / "box" / f"test-{uuid.uuid4().hex[:12]}"
    d.mkdir(parents=True)
    group = Group("/" + str(d.relative_to(UNIFIED)), {"unified": str(d)})
    yield group
    group.remove()


@pytest.fixture
def v2_real_group() -> Iterator[Callable[..., Group]]:
    """Factory of groups on a pure-v2 root with the controllers enabled above them
    (``box`` included), as box's V2Driver makes them: every v2 file is real."""
    made: list[Group] = []

    def make() -> Group:
        box = CGROUP / "box"
        box.mkdir(exist_ok=True)
        for parent in (CGROUP, box):
            offered = set((parent / "cgroup.controllers").read_text().split())
            wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in offered)
            (parent / "cgroup.subtree_control").write_text(wanted)
        d = box / f"test-{uuid.uuid4().hex[:12]}"
        d.mkdir()
        made.append(Group("/" + str(d.relative_to(CGROUP)), {"unified": str(d)}))
        return made[-1]

    yield make
    for group in made:
        group.remove()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
