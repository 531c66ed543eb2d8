"""Shared fixtures: a private box root with the busybox image, a `box` runner, and the
leak check every test run ends with (anything left with the `box` prefix fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.busybox import build_busybox_tar

BOX = str(Path(sys.executable).parent / "box")


@dataclass
class Box:
    """Runs the real `box` command against the session's private root."""

    root: Path
    exec_root: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "BOX_ROOT": str(self.root), "BOX_EXEC_ROOT": str(self.exec_root)}

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 60,
                 check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([BOX, *args], input=input.decode() if input else None,
                              capture_output=True, text=True, env=self.env, timeout=timeout,
                              stdin=None if input else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"box {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
        return proc

    def ok(self, *args: str, timeout: float = 60) -> str:
        return self(*args, timeout=timeout, check=True).stdout

    def inspect(self, ref: str, fmt: str) -> str:
        return self.ok("inspect", "-f", fmt, ref).strip()


def _box_cgroups() -> list[str]:
    found = []
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        for d in (ctrl / "box",):
            if d.is_dir():
                # Container groups (64-hex ids). Tests' own groups (box/test-*) and
                # benchmarks' (box/bench-*) are checked by the tests that make them.
                found.extend(str(p) for p in d.iterdir()
                             if p.is_dir() and len(p.name) == 64 and p.name.isalnum())
    return found


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "busybox.tar"
    build_busybox_tar(path)
    return path


@pytest.fixture(scope="session")
def box_session(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Box]:
    base = tmp_path_factory.mktemp("box")
    box = Box(base / "root", base / "run")
    box.ok("import", str(busybox_tar), "busybox")
    yield box
    ids = box("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box("rm", "-f", *ids)


@pytest.fixture
def box(box_session: Box) -> Iterator[Box]:
    """The session's box; every container a test leaves is force-removed after it."""
    yield box_session
    ids = box_session("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box_session("rm", "-f", *ids, timeout=120)


@pytest.fixture(scope="session", autouse=True)
def no_leaks() -> Iterator[None]:
    before = set(_box_cgroups())
    yield
    leaked = set(_box_cgroups()) - before
    mounts = [ln for ln in Path("/proc/mounts").read_text().splitlines()
              if "/box" in ln.split()[1] or "box-" in ln.split()[1]]
    assert not leaked, f"cgroups left behind: {sorted(leaked)}"
    assert not mounts, f"mounts left behind: {mounts}"
