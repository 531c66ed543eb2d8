"""Every state file kind box reads, damaged in every way (empty, cut short mid-JSON,
garbage bytes, valid JSON of the wrong type, an object without the keys readers need),
under every read-only verb: a listing still lists the others and reports the damaged
one in one line naming it (exit 0); a verb addressing it gives docker's exit code with
one line; never a traceback. Each case restores the file it damaged."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Box, discard_box, private_box
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # every state file kind damaged five ways, every read-only verb

DAMAGES = {
    "empty": lambda good: b"",
    "cut-short": lambda good: good[: len(good) // 2],
    "garbage": lambda good: b"\x00\xff\xfegarbage\x1b[31m" + good[:5],
    "wrong-type": lambda good: b'["a", 1]',
    "missing-keys": lambda good: b'{"Unrelated": true}',
}


@dataclass
class World:
    box: Box
    victim: str  # running, on a user network, with a named volume and a published port
    other: str  # exited, on no network: listed whatever happens to the victim
    net_id: str
    image_id: str

    def files(self) -> dict[str, Path]:
        """Each JSON state file kind, the one belonging to the victim (or its network,
        volume, image)."""
        root = self.box.root
        cdir = root / "containers" / self.victim
        layer = json.loads(self.box.inspect("busybox", "{{json .RootFS.Layers}}"))[0]
        return {
            "config.v2.json": cdir / "config.v2.json",
            "hostconfig.json": cdir / "hostconfig.json",
            "repositories.json": root / "image" / "repositories.json",
            "image-config": root / "image" / "blobs" / "sha256" / self.image_id[7:],
            "layer-meta": root / "image" / "layers" / f"{layer[7:]}.json",
            "network": root / "network" / "networks" / f"{self.net_id}.json",
            "ipam": root / "network" / "ipam" / f"{self.net_id}.json",
            "volume": next((root / "volumes" / "dvol").glob("*.json")),
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Iterator[World]:
    base = tmp_path_factory.mktemp("damaged")
    box = private_box(base / "root", base / "run")
    try:
        box.ok("import", str(busybox_tar), "busybox")
        box.ok("network", "create", "--subnet", _other_subnet(box), "dnet")
        box.ok("volume", "create", "dvol")
        victim = box.ok("run", "-d", "--name", "victim", "--network", "dnet", "-v",
                        "dvol:/data", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
                        "echo good line; exec sleep 600").strip()
        box.ok("run", "--name", "other", "--network", "none", "busybox", "echo", "other")
        other = box.inspect("other", "{{.Id}}")
        net_id = box.ok("network", "inspect", "-f", "{{.Id}}", "dnet").strip()
        world = World(box, victim, other, net_id, box.inspect("busybox", "{{.Id}}"))
        wait_until(lambda: "good line" in box("logs", "victim").stdout, 30,
                   "'good line' in the log of victim")
        yield world
    finally:
        discard_box(box)


def _other_subnet(box: Box) -> str:
    from tests.conftest import free_subnet

    return free_subnet("172.29", skip={box.subnet})


@pytest.fixture
def damaged(world: World, request: pytest.FixtureRequest) -> Iterator[tuple[World, str, Path]]:
    kind, damage = request.param
    path = world.files()[kind]
    good = path.read_bytes()
    path.write_bytes(DAMAGES[damage](good))
    try:
        yield world, f"{kind}/{damage}", path
    finally:
        path.write_bytes(good)


def check(proc: subprocess.CompletedProcess[str], code: int, names: tuple[str, ...]
          ) -> list[str]:
    """No traceback; the exit code; every stderr line (at most one) names the file or the
    object. Returns stdout's lines."""
    what = f"{proc.args[1:]}: {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, what
    assert proc.returncode == code, what
    err = proc.stderr.splitlines()
    assert len(err) <= 1, what
    if code:
        assert err, what
    for line in err:
        assert line.startswith("box: ") and any(n in line for n in names), what
    return proc.stdout.splitlines()


def damaging(*kinds: str) -> pytest.MarkDecorator:
    """Run the test once per (kind, damage): ``damaged`` holds the file so damaged."""
    cases = [(kind, damage) for kind in kinds for damage in DAMAGES]
    return pytest.mark.parametrize("damaged", cases, indirect=True,
                                   ids=[f"{k}-{d}" for k, d in cases])


@damaging("config.v2.json", "hostconfig.json")
def test_container_state(damaged: tuple[World, str, Path]) -> None:
    w, kind, path = damaged
    box = w.box
    names = (w.victim, str(path))
    # listings: the other container is there, the victim reported once
    assert "other" in check(box("ps", "-a", "--format", "{{.Names}}"), 0, names)
    assert any(w.other.startswith(i) for i in check(box("ps", "-aq"), 0, names))
    assert any("other" in row for row in check(box("ps", "-a"), 0, names))
    check(box("ps"), 0, names)
    check(box("stats", "--no-stream", "--format", "{{.Name}}"), 0, names)
    check(box("system", "df"), 0, names)
    check(box("network", "ls"), 0, names)
    check(box("network", "inspect", "dnet"), 0, names)
    check(box("volume", "ls"), 0, names)
    check(box("volume", "inspect", "dvol"), 0, names)
    check(box("images"), 0, names)
    # verbs addressing the damaged container: docker's 1, one line naming the file;
    # every key of hostconfig.json is optional, so an object without them is readable
    addressed = 0 if kind == "hostconfig.json/missing-keys" else 1
    for verb in (["inspect"], ["inspect", "--type", "container"], ["logs"], ["top"],
                 ["port"], ["stats", "--no-stream"]):
        check(box(*verb, "victim"), addressed, (str(path),))
    # and the others still answer
    assert check(box("inspect", "-f", "{{.Name}}", "other"), 0, ()) == ["/other"]
    assert check(box("logs", "other"), 0, ()) == ["other"]


@damaging("repositories.json", "image-config", "layer-meta")
def test_image_store(damaged: tuple[World, str, Path]) -> None:
    w, kind, path = damaged
    box = w.box
    names = (str(path),)
    check(box("images"), 0, names)
    check(box("images", "-a", "--format", "{{.ID}} {{.Size}}"), 0, names)
    check(box("system", "df"), 0, names)
    check(box("ps", "-a"), 0, ())
    check(box("inspect", "victim"), 0, ())
    addressed = 0 if kind.startswith("layer-meta") else 1  # a layer's size is all it tells
    for verb in (["history"], ["image", "inspect"], ["inspect", "--type", "image"]):
        check(box(*verb, "busybox"), addressed, names)


@damaging("network", "ipam", "volume")
def test_network_and_volume_state(damaged: tuple[World, str, Path]) -> None:
    w, kind, path = damaged
    box = w.box
    names = (str(path),)
    nets = check(box("network", "ls", "--format", "{{.Name}}"), 0, names)
    assert {"bridge", "host", "none"} <= set(nets)
    vols = check(box("volume", "ls", "-q"), 0, names)
    assert ("dvol" in vols) == (not kind.startswith("volume"))
    check(box("ps", "-a"), 0, names)
    check(box("inspect", "victim"), 0, names)
    check(box("port", "victim"), 0, names)
    check(box("system", "df"), 0, names)
    check(box("network", "inspect", "bridge"), 0, names)
    check(box("network", "inspect", "dnet"), 1 if kind.startswith("network") else 0, names)
    check(box("volume", "inspect", "dvol"), 1 if kind.startswith("volume") else 0, names)


def test_files_no_read_only_verb_parses(world: World) -> None:
    """hostname/hosts/resolv.conf (the container reads them) and the exec root's own
    files (monitor.log, locks): damaged, no verb cares."""
    box = world.box
    files = [box.root / "containers" / world.victim / n
             for n in ("hostname", "hosts", "resolv.conf")]
    files += [p for p in box.exec_root.rglob("*") if p.is_file()]
    saved = {p: p.read_bytes() for p in files}
    try:
        for p in files:
            p.write_bytes(b"\x00\xffgarbage")
        for verb in (["ps", "-a"], ["inspect", "victim"], ["logs", "victim"], ["top", "victim"],
                     ["port", "victim"], ["stats", "--no-stream", "victim"], ["system", "df"],
                     ["network", "ls"], ["volume", "ls"]):
            check(box(*verb), 0, ())
    finally:
        for p, data in saved.items():
            p.write_bytes(data)


def test_log_with_garbage_lines(world: World) -> None:
    """Good lines are printed, garbage ones skipped: a json-file log is appended to by
    the monitor, so the test writes its own log for an exited container."""
    box = world.box
    log = Path(box.inspect("other", "{{.LogPath}}"))
    good = log.read_bytes()
    line = json.dumps({"log": "after\n", "stream": "stdout",
                       "time": "2030-01-01T00:00:00.000000001Z"}).encode() + b"\n"
    try:
        for junk in (b"\x00\xff\xfe\n", b"{\"log\": \"cut\n", b"[1,2]\n", b"{}\n", b"\n",
                     b'{"log": 5, "stream": "stdout", "time": "x"}\n'):
            log.write_bytes(good + junk + line)
            proc = box("logs", "other")
            assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
            assert proc.stdout == "other\nafter\n", (junk, proc.stdout)
            assert box("logs", "-t", "--tail", "5", "other").returncode == 0
        log.write_bytes(good[: len(good) // 2])  # cut mid-line
        proc = box("logs", "other")
        assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr
    finally:
        log.write_bytes(good)
