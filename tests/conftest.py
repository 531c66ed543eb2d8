"""Shared fixtures: a private box root with the busybox image, a `box` runner, and the
leak check every test run ends with (anything left with the `box` prefix fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.busybox import build_busybox_tar
from tests.support.cgroup2 import hierarchies

BOX = str(Path(sys.executable).parent / "box")


@dataclass
class Box:
    """Runs the real `box` command against the session's private root."""

    root: Path
    exec_root: Path
    bridge: str = "box0"
    subnet: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "BOX_ROOT": str(self.root), "BOX_EXEC_ROOT": str(self.exec_root),
               "BOX_BRIDGE": self.bridge}
        if self.subnet:
            env["BOX_DEFAULT_SUBNET"] = self.subnet
        return env

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


def _box_cgroups() -> set[str]:
    found: set[str] = set()
    for hierarchy in hierarchies():  # each v1 controller and unified, or the v2 root
        # Container groups (64-hex ids). Tests' own groups (box/test-*) and benchmarks'
        # (box/bench-*) are checked by the tests that make them.
        try:
            found.update(str(p) for p in (hierarchy / "box").iterdir()
                         if p.is_dir() and len(p.name) == 64 and p.name.isalnum())
        except FileNotFoundError:  # none, or its last group's owner just removed it
            pass
    return found


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image") / "busybox.tar"
    build_busybox_tar(path)
    return path


_handed_out: list[str] = []  # subnets given to this session's roots: bridges come up lazily


def free_subnet(prefix: str = "172.31", skip: set[str] | None = None) -> str:
    """A /24 under ``prefix`` that no host route covers (sessions run side by side) and
    no root of this session was given (its bridge may not be up yet)."""
    import ipaddress

    skip = {*(skip or ()), *_handed_out}
    routes = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        f = line.split()
        dst, mask = int(f[1], 16), int(f[7], 16)
        if mask:
            routes.append(ipaddress.ip_network(
                (ipaddress.IPv4Address(dst.to_bytes(4, "little")),
                 bin(mask).count("1")), strict=False))
    start = os.getpid() % 200
    for i in range(256):
        third = 40 + (start + i) % 200
        cand = ipaddress.ip_network(f"{prefix}.{third}.0/24")
        if str(cand) in skip or any(cand.overlaps(r) for r in routes):
            continue
        return str(cand)
    raise RuntimeError("no free /24 for the test session's bridge")


def private_box(root: Path, exec_root: Path) -> Box:
    """A Box whose default bridge and subnet are its own: with ``bridge`` the default
    network, a root must never share ``box0`` (or another session's bridge)."""
    subnet = free_subnet()
    bridge = f"box-t{os.getpid() % 100000}-{len(_handed_out)}"  # IFNAMSIZ: <= 15 chars
    _handed_out.append(subnet)
    return Box(root, exec_root, bridge=bridge, subnet=subnet)


def discard_box(box: Box) -> None:
    """Every container removed, then the root's bridges, NAT entries and pools; an
    address still allocated after that is a leak in the runtime."""
    from runtime.network.teardown import teardown_root
    from runtime.paths import Paths

    ids = box("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box("rm", "-f", *ids, timeout=120)
    left = ipam_allocations(box.root)
    teardown_root(Paths(box.root, box.exec_root))
    assert not left, f"addresses still allocated after every container was removed: {left}"


def _link_root(name: str) -> str | None:
    """The box root a link belongs to (its bridge's ifalias, or its master's), "" if none
    is recorded, None if the link is gone."""
    net = Path("/sys/class/net")
    try:
        master = net / name / "master"
        owner = master.resolve().name if master.exists() else name
        return (net / owner / "ifalias").read_text().strip()
    except OSError:
        return None if not (net / name).exists() else ""


def box_links(mine: Path | None = None) -> set[str]:
    """``box``-prefixed links. With ``mine`` (a root, or a session's base directory) only
    those that are not another root's: sessions and demos run side by side on this host."""
    links = {p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith(("vbox", "box"))}
    if mine is None:
        return links
    out = set()
    for name in links:
        root = _link_root(name)
        if root == "" or (root is not None and (root == str(mine) or root.startswith(f"{mine}/"))):
            out.add(name)
    return out


def nft_box_elements(with_table: bool = False) -> set[str]:
    """Every element of the ``ip box`` table's maps and sets, as text; with ``with_table``
    also "table ip box" while the table exists (the last root's teardown drops it)."""
    import json as _json

    try:
        proc = subprocess.run(["nft", "-j", "list", "table", "ip", "box"], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:  # no nftables yet (a fresh machine before bootstrap, a node)
        return set()
    if proc.returncode:
        return set()
    out = {"table ip box"} if with_table else set()
    for item in _json.loads(proc.stdout)["nftables"]:
        obj = item.get("map") or item.get("set")
        for elem in (obj or {}).get("elem", []):
            out.add(f"{obj['name']}: {_json.dumps(elem, sort_keys=True)}")
    return out


def ipam_allocations(root: Path) -> dict[str, dict[str, str]]:
    import json as _json

    out = {}
    for path in (root / "network" / "ipam").glob("*.json"):
        table = _json.loads(path.read_text()).get("Allocated") or {}
        if table:
            out[path.name] = table
    return out


@pytest.fixture(scope="session")
def box_session(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[Box]:
    base = tmp_path_factory.mktemp("box")
    box = private_box(base / "root", base / "run")
    box.ok("import", str(busybox_tar), "busybox")
    yield box
    discard_box(box)


@pytest.fixture
def make_box() -> Iterator[Callable[[Path, Path], Box]]:
    """Roots of a test's own beyond the session's (an empty root to load into, a second
    root to pull into): each gets its own bridge and subnet, and is discarded after."""
    made: list[Box] = []

    def make(root: Path, exec_root: Path) -> Box:
        made.append(private_box(root, exec_root))
        return made[-1]

    yield make
    for box in made:
        discard_box(box)


@pytest.fixture
def box(box_session: Box) -> Iterator[Box]:
    """The session's box; every container a test leaves is force-removed after it."""
    yield box_session
    ids = box_session("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box_session("rm", "-f", *ids, timeout=120)


def _box_netns() -> list[str]:
    netns = Path("/run/netns")
    return [p.name for p in netns.glob("box*")] if netns.is_dir() else []


def _box_mounts() -> list[str]:
    return [ln for ln in Path("/proc/mounts").read_text().splitlines()
            if "/box" in ln.split()[1] or "box-" in ln.split()[1]]


def _box_parents() -> set[str]:
    """The ``box`` parent groups (one per hierarchy, the unified one included): the
    runtime removes each once its last container's group is gone, and so must tests."""
    return {str(d / "box") for d in hierarchies() if (d / "box").is_dir()}


def _kernel_objects(mine: Path) -> set[str]:
    """Every ``box``-prefixed kernel object in sight, as "kind: name" (links only if they
    belong to this session's roots: other sessions and demos run side by side)."""
    return ({f"cgroup: {c}" for c in _box_cgroups() | _box_parents()}
            | {f"link: {n}" for n in box_links(mine)}
            | {f"nft: {e}" for e in nft_box_elements(with_table=True)}
            | {f"netns: {n}" for n in _box_netns()} | {f"mount: {m}" for m in _box_mounts()})


# object -> the test after which it was first seen, so a leak names the test that made it
_first_seen: dict[str, str] = {}
_session_base: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def no_leaks(tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever this session leaves with the ``box`` prefix fails it, each object named
    with the test after which it first appeared (module fixtures' objects are seen after
    their module's first test, and are gone by the end when they clean up). A session of
    node tests only (``make test-nodes``) makes nothing on this kernel: everything runs in
    the guests, so what appears meanwhile is a neighbour's and is not checked."""
    if all(item.get_closest_marker("nodes") for item in request.session.items):
        yield
        return
    mine = tmp_path_factory.getbasetemp()  # every root this session makes is under it
    _session_base.append(mine)
    before = _kernel_objects(mine)
    yield
    leaked = sorted(_kernel_objects(mine) - before)
    named = [f"{obj}  (first seen after {_first_seen.get(obj, 'the last test')})"
             for obj in leaked]
    assert not leaked, "left behind:\n" + "\n".join(named)


@pytest.fixture(autouse=True)
def leak_witness(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test (its own fixtures torn down first), note which new kernel objects
    exist, for the session's leak report."""
    yield
    if _session_base:
        for obj in _kernel_objects(_session_base[0]):
            _first_seen.setdefault(obj, request.node.nodeid)


@pytest.fixture(autouse=True)
def dev_null_intact() -> Iterator[None]:
    """Once, during development, something replaced the host's /dev/null with a plain
    file; this names the test that does it, should it ever happen again."""
    yield
    import stat as _stat

    assert _stat.S_ISCHR(os.lstat("/dev/null").st_mode), (
        "the host's /dev/null is no longer a device"
    )
