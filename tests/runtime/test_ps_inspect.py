"""`box ps`, `box inspect`, `box top` and the state files on disk, in Docker's shapes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Box

PS_HEADER = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


@pytest.fixture
def three(box: Box) -> Iterator[dict[str, str]]:
    """web (running, label tier=front), job (exited 3), idle (created)."""
    ids = {
        "web": box.ok("run", "-d", "--name", "web", "-l", "tier=front", "-l", "team=obs",
                      "busybox", "sleep", "60").strip(),
        "job": box.ok("create", "--name", "job", "-l", "tier=back", "busybox", "sh", "-c",
                      "exit 3").strip(),
        "idle": box.ok("create", "--name", "idle", "busybox", "sleep", "1").strip(),
    }
    box.ok("start", "job")
    box.ok("wait", "job")
    yield ids


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_ps_default_table(box: Box, three: dict[str, str]) -> None:
    lines = box.ok("ps").splitlines()
    assert columns(lines[0]) == PS_HEADER
    assert len(lines) == 2
    row = columns(lines[1])
    assert row[0] == three["web"][:12]
    assert row[1:3] == ["busybox", '"sleep 60"']
    assert row[4].startswith("Up ")
    assert row[-1] == "web"
    # columns line up under their headers
    header = lines[0]
    assert lines[1].index("busybox") == header.index("IMAGE")
    assert lines[1].index("web") == header.index("NAMES")


def test_ps_all_quiet_no_trunc(box: Box, three: dict[str, str]) -> None:
    assert box.ok("ps", "-q").split() == [three["web"][:12]]
    assert sorted(box.ok("ps", "-aq").split()) == sorted(i[:12] for i in three.values())
    assert sorted(box.ok("ps", "-aq", "--no-trunc").split()) == sorted(three.values())
    rows = {columns(ln)[-1]: columns(ln) for ln in box.ok("ps", "-a").splitlines()[1:]}
    assert rows["job"][4].startswith("Exited (3) ")
    assert rows["idle"][4] == "Created"
    assert rows["job"][2] == '"sh -c exit 3"'


def test_ps_truncates_long_commands(box: Box) -> None:
    box.ok("create", "--name", "long", "busybox", "sh", "-c", "echo a very long command line")
    assert '"sh -c echo a very l…"' in box.ok("ps", "-a")
    assert '"sh -c echo a very long command line"' in box.ok("ps", "-a", "--no-trunc")


@pytest.mark.parametrize("flt, names", [
    ("name=web", ["web"]),
    ("name=^j", ["job"]),
    ("status=exited", ["job"]),
    ("status=created", ["idle"]),
    ("status=running", ["web"]),
    ("label=tier", ["job", "web"]),
    ("label=tier=back", ["job"]),
    ("exited=3", ["job"]),
])
def test_ps_filter(box: Box, three: dict[str, str], flt: str, names: list[str]) -> None:
    out = box.ok("ps", "-a", "--filter", flt, "--format", "{{.Names}}")
    assert sorted(out.split()) == names


def test_ps_filters_combine(box: Box, three: dict[str, str]) -> None:
    out = box.ok("ps", "-a", "-f", "label=tier", "-f", "status=running", "--format",
                 "{{.Names}}")
    assert out.split() == ["web"]


def test_ps_bad_filter(box: Box) -> None:
    proc = box("ps", "--filter", "status=sleepy")
    assert proc.returncode != 0 and "sleepy" in proc.stderr


def test_ps_format(box: Box, three: dict[str, str]) -> None:
    out = box.ok("ps", "-a", "--format", "{{.Names}}\t{{.Status}}")
    rows = dict(line.split("\t") for line in out.splitlines())
    assert set(rows) == {"web", "job", "idle"}
    assert rows["web"].startswith("Up ") and rows["idle"] == "Created"
    table = box.ok("ps", "--format", "table {{.ID}}\t{{.Names}}\t{{.Label \"tier\"}}")
    head, row = table.splitlines()
    assert columns(head)[:2] == ["CONTAINER ID", "NAMES"]
    assert columns(row) == [three["web"][:12], "web", "front"]


def test_inspect_shape(box: Box, three: dict[str, str]) -> None:
    [view] = json.loads(box.ok("inspect", "web"))
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
                "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"):
        assert key in view, key
    assert view["Id"] == three["web"]
    assert view["Name"] == "/web"
    assert view["Path"] == "sleep" and view["Args"] == ["60"]
    assert view["Image"].startswith("sha256:")
    state = view["State"]
    assert state["Status"] == "running" and state["Running"] is True
    assert state["Pid"] > 0 and state["ExitCode"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", state["StartedAt"])
    assert view["Config"]["Labels"] == {"team": "obs", "tier": "front"}
    assert view["Config"]["Cmd"] == ["sleep", "60"]
    assert view["Config"]["Image"] == "busybox"
    assert view["Config"]["Hostname"] == three["web"][:12]
    # no --network: docker's default bridge, an address from the root's default subnet
    assert view["HostConfig"]["NetworkMode"] == "bridge"
    assert list(view["NetworkSettings"]["Networks"]) == ["bridge"]
    ip = view["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert ip.startswith(box.subnet.rsplit(".", 1)[0] + "."), ip
    assert view["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert view["GraphDriver"]["Name"] == "overlay2"
    assert set(view["GraphDriver"]["Data"]) == {"LowerDir", "MergedDir", "UpperDir", "WorkDir"}
    assert view["LogPath"].endswith(f"/containers/{three['web']}/{three['web']}-json.log")


def test_inspect_several_and_format(box: Box, three: dict[str, str]) -> None:
    views = json.loads(box.ok("inspect", "web", "job"))
    assert [v["Name"] for v in views] == ["/web", "/job"]
    assert views[1]["State"]["ExitCode"] == 3
    out = box.ok("inspect", "-f", "{{.Name}} {{.State.ExitCode}}", "web", "job")
    assert out.splitlines() == ["/web 0", "/job 3"]
    assert box.inspect(three["web"][:5], "{{.Id}}") == three["web"]


def test_state_files_use_docker_field_names(box: Box, three: dict[str, str]) -> None:
    cdir = box.root / "containers" / three["web"]
    cfg = json.loads((cdir / "config.v2.json").read_text())
    for key in ("ID", "Name", "Created", "Config", "Image", "State", "LogPath", "Path",
                "Args", "RestartCount", "Driver", "HostnamePath", "HostsPath",
                "ResolvConfPath"):
        assert key in cfg, key
    assert cfg["ID"] == three["web"] and cfg["Name"] == "/web"
    for key in ("Image", "Labels", "Env", "Cmd", "Hostname"):
        assert key in cfg["Config"], key
    for key in ("Running", "Pid", "ExitCode", "OOMKilled", "StartedAt", "FinishedAt"):
        assert key in cfg["State"], key
    assert cfg["State"]["Running"] is True
    host = json.loads((cdir / "hostconfig.json").read_text())
    for key in ("NetworkMode", "RestartPolicy", "LogConfig", "Memory", "NanoCpus",
                "CpuShares", "PidsLimit", "AutoRemove"):
        assert key in host, key
    assert "HostConfig" not in cfg
    # no temp file of an atomic write is left behind
    assert sorted(p.name for p in cdir.iterdir() if p.name.startswith(".")) == []


def test_top_lists_the_containers_processes(box: Box) -> None:
    cid = box.ok("run", "-d", "busybox", "sh", "-c", "sleep 61 & sleep 62").strip()
    lines = box.ok("top", cid).splitlines()
    assert columns(lines[0]) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = {columns(ln)[-1]: columns(ln) for ln in lines[1:]}
    # busybox sh execs its last command: PID 1 is `sleep 62`, `sleep 61` its child
    assert sorted(rows) == ["sleep 61", "sleep 62"]
    pid = box.inspect(cid, "{{.State.Pid}}")
    assert rows["sleep 62"][1] == pid and rows["sleep 61"][2] == pid
    assert all(columns(ln)[0] == "root" for ln in lines[1:])


def test_top_of_a_stopped_container(box: Box) -> None:
    box.ok("run", "--name", "over", "busybox", "true")
    proc = box("top", "over")
    assert proc.returncode == 1 and "is not running" in proc.stderr


def test_inspect_size_reports_the_containers_layer_and_root(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "head -c 300000 /dev/zero > /big; sleep 60").strip()
    for _ in range(50):
        if box("exec", cid, "test", "-s", "/big").returncode == 0:
            break
        time.sleep(0.1)
    time.sleep(0.2)
    assert box.inspect(cid, "{{.SizeRw}}") == "<no value>"  # only with --size, as docker
    rw, root = map(int, box.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", cid).split())
    assert 300_000 <= rw < 400_000
    assert root > rw + 1_000_000  # plus the busybox image


def test_ps_size_is_dockers_size_column_from_the_layer_walk(box: Box) -> None:
    """``ps -s`` adds SIZE to the default table: "<SizeRw> (virtual <SizeRootFs>)" in
    go-units' 3-digit decimal units, the numbers ``inspect -s`` reports; a ``--format``
    that uses ``.Size`` gets it without ``-s``; it follows what the container writes."""
    from runtime.format.human import human_size_precision

    cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "head -c 300000 /dev/zero > /big; sleep 60").strip()
    deadline = time.monotonic() + 10
    while box("exec", cid, "test", "-s", "/big").returncode != 0:
        assert time.monotonic() < deadline, "the container never wrote /big"
        time.sleep(0.1)
    time.sleep(0.2)
    rw, root = map(int, box.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", cid).split())
    expected = f"{human_size_precision(rw, 3)} (virtual {human_size_precision(root, 3)})"
    assert expected.startswith("30") and "kB (virtual " in expected
    header, row = box.ok("ps", "-s").splitlines()
    assert re.split(r"\s{2,}", header)[-1] == "SIZE"
    assert row.endswith(expected)
    assert box.ok("ps", "--format", "{{.Size}}").strip() == expected
    assert box.ok("ps").splitlines()[0].split()[-1] == "NAMES"  # no SIZE without -s
    box.ok("exec", cid, "sh", "-c", "head -c 2000000 /dev/zero > /more")
    grown = box.ok("ps", "--format", "{{.Size}}").strip()
    assert grown.startswith(human_size_precision(rw + 2_000_000, 3) + " (virtual ")
