"""Discovery over tests/fixtures/docker_root and fake cgroup trees of every layout."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cgroupstats import open_reader
from cgroupstats.model import ContainerRef
from collector.discover import Discovery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DOCKER_ROOT = FIXTURES / "docker_root"
WEB = "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2"  # cgroupfs
DB = "7bdc25d1694ef984782a16f6f1710c1c6bc83ba7a131b515baf532bea021d011"  # systemd
OLD = "cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4"  # stopped
BOXWEB = "97bdba037fdd5550ccc69fb99a336695e3f72bd5b24ec01573de013c43c5f61c"  # runtime, v1
BOXV2 = "3911765115315002514bcae7f433a7fce2f5f7e85fb8e33d78686911a038a4dd"  # runtime, v2
K1 = "a" * 64
K2 = "b" * 64
K3 = "c" * 64
K4 = "d" * 64
UID = "0f4b8c9e_1234_4abc_9def_0123456789ab"
WHITELIST = {"com.example.team"}

# Groups of every layout; the last three are not containers.
GROUPS = [
    f"/docker/{WEB}",
    f"/system.slice/docker-{DB}.scope",
    f"/box/{BOXWEB}",
    "/box/test-raw",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice/cri-containerd-{K1}.scope",
    f"/kubepods.slice/kubepods-pod{UID}.slice/crio-{K2}.scope",
    f"/kubepods/burstable/pod{UID}/{K3}",
    f"/kubepods/pod{UID}/{K4}",
    "/system.slice/sshd.service",
    f"/kubepods/burstable/pod{UID}",
    "/user.slice/user-0.slice",
]
RAW = {
    "/box/test-raw",
    f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice/cri-containerd-{K1}.scope",
    f"/kubepods.slice/kubepods-pod{UID}.slice/crio-{K2}.scope",
    f"/kubepods/burstable/pod{UID}/{K3}",
    f"/kubepods/pod{UID}/{K4}",
}


def fake_tree(root: Path, version: int) -> Path:
    if version == 2:
        root.mkdir(parents=True)
        (root / "cgroup.controllers").write_text("cpu io memory pids\n")
        bases = [root]
    else:
        bases = [root / c for c in ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids")]
    for base in bases:
        for g in GROUPS:
            (base / g.strip("/")).mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DOCKER_ROOT, tmp_path / "docker"))


@pytest.mark.parametrize("version", [1, 2])
def test_every_layout_is_found(tmp_path: Path, state_root: Path, version: int) -> None:
    cg = fake_tree(tmp_path / "cg", version)
    refs = Discovery([state_root], cg, WHITELIST).scan()
    assert set(refs) == {WEB, DB, BOXWEB, BOXV2} | RAW
    for cid in RAW:
        ref = refs[cid]
        assert ref.cgroup == cid and ref.name == "" and ref.cgroup_version == version
        assert all(os.path.isdir(p) for p in ref.cgroup_paths.values())
    kinds = {cid: refs[cid].source for cid in RAW}
    assert kinds["/box/test-raw"] == "cgroup"

    web = refs[WEB]
    assert (web.name, web.image, web.source, web.pid) == ("web", "nginx:1.25", "docker", 4242)
    assert web.cgroup == f"/docker/{WEB}" and web.cgroup_version == version
    assert web.labels == {"com.example.team": "web"}  # the secret label is not whitelisted
    assert "hunter2" not in repr(web)  # Env never reaches a ref
    assert web.restart_count == 2 and web.started_at == pytest.approx(1714557601.5)
    if version == 1:
        assert web.cgroup_paths["memory"] == str(cg / "memory" / "docker" / WEB)
        assert set(web.cgroup_paths) == {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids"}
    else:
        assert web.cgroup_paths == {"unified": str(cg / "docker" / WEB)}
    assert refs[DB].cgroup == f"/system.slice/docker-{DB}.scope"

    box = refs[BOXWEB]
    assert box.source == "box" and box.cgroup == f"/box/{BOXWEB}" and box.cgroup_version == 1
    assert box.cgroup_paths["memory"] == f"/sys/fs/cgroup/memory/box/{BOXWEB}"  # as written
    assert refs[BOXV2].cgroup_paths == {"unified": f"/sys/fs/cgroup/box/{BOXV2}"}
    assert refs[BOXV2].cgroup == f"/box/{BOXV2}" and refs[BOXV2].cgroup_version == 2


class CountingDiscovery(Discovery):
    parses = 0

    def _parse_state(self, config: str, mtime_ns: int) -> ContainerRef | None:
        self.parses += 1
        return super()._parse_state(config, mtime_ns)


def rewrite(config: Path, change: dict) -> None:
    """Atomically, as Docker and the runtime do (temp file + rename)."""
    doc = json.loads(config.read_text())
    doc.update(change)
    tmp = config.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, config)


def test_unchanged_state_files_are_not_parsed_again(tmp_path: Path, state_root: Path) -> None:
    cg = fake_tree(tmp_path / "cg", 1)
    d = CountingDiscovery([state_root], cg, WHITELIST)
    first = d.scan()
    assert d.parses == 5  # web, db, old, box v1, box v2
    second = d.scan()
    assert d.parses == 5
    assert all(second[k] is first[k] for k in first)  # same objects: nothing rebuilt

    config = state_root / "containers" / WEB / "config.v2.json"
    doc = json.loads(config.read_text())
    doc["Config"]["Labels"]["com.example.team"] = "frontend"
    rewrite(config, {"Config": doc["Config"], "Name": "/web2"})
    third = d.scan()
    assert d.parses == 6
    assert third[WEB].name == "web2" and third[WEB].labels == {"com.example.team": "frontend"}

    rewrite(config, {"State": {**doc["State"], "Running": False}})  # stopped
    assert WEB not in d.scan()
    shutil.rmtree(state_root / "containers" / DB)  # removed
    refs = d.scan()
    assert DB not in refs
    # its group is still there: now found by the raw walk, with the path as its id
    raw = f"/system.slice/docker-{DB}.scope"
    assert refs[raw].source == "docker" and refs[raw].name == ""


def test_docker_group_appearing_after_the_state_file(tmp_path: Path, state_root: Path) -> None:
    cg = tmp_path / "cg"
    (cg / "memory").mkdir(parents=True)
    d = Discovery([state_root], cg, WHITELIST)
    assert WEB not in d.scan()  # running per the file, but no group yet
    (cg / "memory" / "docker" / WEB).mkdir(parents=True)
    assert d.scan()[WEB].cgroup_paths == {"memory": str(cg / "memory" / "docker" / WEB)}


def test_missing_roots_are_fine(tmp_path: Path) -> None:
    assert Discovery([tmp_path / "nope"], tmp_path / "nocg").scan() == {}


def test_discovered_raw_group_is_readable() -> None:
    """Discovery and the reader agree on paths: the v1 fixture's group end to end."""
    refs = Discovery([], FIXTURES / "cgroup_v1").scan()
    reader = open_reader(refs["/box/test-capture"])
    try:
        assert reader.read().cpu.usage_ns == 1139884591
    finally:
        reader.close()


def test_scan_of_many_containers_is_cheap(tmp_path: Path, state_root: Path) -> None:
    import time

    cg = tmp_path / "cg"
    template = json.loads((DOCKER_ROOT / "containers" / WEB / "config.v2.json").read_text())
    for i in range(500):
        cid = f"{i:064x}"
        (cg / "memory" / "box" / cid).mkdir(parents=True)
        cdir = state_root / "containers" / cid
        cdir.mkdir()
        doc = {
            **template,
            "ID": cid,
            "Name": f"/c{i}",
            "Box": {
                "CgroupVersion": 1,
                "CgroupPaths": {"memory": str(cg / "memory" / "box" / cid)},
            },
        }
        (cdir / "config.v2.json").write_text(json.dumps(doc))
    d = CountingDiscovery([state_root], cg)
    assert len(d.scan()) >= 500
    parsed = d.parses
    t = time.perf_counter()
    refs = d.scan()
    elapsed = time.perf_counter() - t
    assert d.parses == parsed and len(refs) >= 500
    assert elapsed < 0.05, f"rescan of 500 took {elapsed * 1e3:.1f} ms"


def test_label_whitelist_takes_globs_as_the_shipper_does(tmp_path: Path, state_root: Path) -> None:
    """``--label-whitelist io.kubernetes.*`` exports the Kubernetes labels (it used to
    match exact names only, so the glob silently exported nothing)."""
    config = state_root / "containers" / WEB / "config.v2.json"
    doc = json.loads(config.read_text())
    doc["Config"]["Labels"].update({"io.kubernetes.pod.name": "web-0",
                                    "io.kubernetes.pod.namespace": "shop"})
    config.write_text(json.dumps(doc))
    cg = fake_tree(tmp_path / "cg", 1)
    web = Discovery([state_root], cg, ["io.kubernetes.*"]).scan()[WEB]
    assert web.labels == {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "shop"}
    web = Discovery([state_root], cg, ["io.kubernetes.*", "com.example.team"]).scan()[WEB]
    assert set(web.labels) == {"io.kubernetes.pod.name", "io.kubernetes.pod.namespace",
                               "com.example.team"}
