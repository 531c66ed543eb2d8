"""box events on real containers: what the monitor and the commands journal (create,
start, kill, die, stop, destroy, oom, restart, health_status, pause, update, image,
network and volume events), docker's line and --format, filters, replay with --until,
streaming until SIGINT/SIGTERM, and docker's refusals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BOX, Box
from tests.support.wait import wait_until

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (\w+) ([\w:. ]+?) (\S+)( \(.*\))?$")
TRAP = 'trap "exit 0" TERM; while true; do sleep 0.05; done'


def since() -> str:
    return f"{time.time_ns() // 1000 / 1e6:.6f}"


def replay(box: Box, t0: str, *args: str) -> list[str]:
    return box.ok("events", "--since", t0, "--until", since(), *args).splitlines()


def actions(box: Box, t0: str, *args: str) -> list[str]:
    return replay(box, t0, "--format", "{{.Type}} {{.Action}}", *args)


def test_a_containers_life_in_dockers_line_format(box: Box) -> None:
    t0 = since()
    cid = box.ok("run", "-d", "--network", "none", "--name", "ev1", "-l", "team=blue",
                 "busybox", "sh", "-c", TRAP).strip()
    box.ok("stop", "ev1")
    box.ok("rm", "ev1")
    lines = replay(box, t0, "--filter", "container=ev1")
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.group(2) for m in parsed] == ["create", "start", "kill", "die", "stop", "destroy"]
    assert {m.group(3) for m in parsed} == {cid}
    assert lines[0].endswith(f"container create {cid} (image=busybox, name=ev1, team=blue)")
    assert lines[2].endswith("(image=busybox, name=ev1, signal=15, team=blue)")
    assert lines[3].endswith("(exitCode=0, image=busybox, name=ev1, team=blue)")


def test_json_format_is_dockers_message(box: Box) -> None:
    t0 = since()
    assert box("run", "--network", "none", "--name", "ev2", "busybox", "sh", "-c",
               "exit 3").returncode == 3
    cid = box.inspect("ev2", "{{.Id}}")
    docs = [json.loads(x) for x in replay(box, t0, "--format", "{{json .}}",
                                          "--filter", "event=die")]
    assert len(docs) == 1
    doc = docs[0]
    assert (doc["status"], doc["id"], doc["from"], doc["Type"], doc["Action"]) == \
        ("die", cid, "busybox", "container", "die")
    assert doc["Actor"] == {"ID": cid, "Attributes": {"exitCode": "3", "image": "busybox",
                                                      "name": "ev2"}}
    assert doc["scope"] == "local" and doc["time"] == doc["timeNano"] // 10**9
    assert [json.loads(x) for x in replay(box, t0, "--format", "json", "--filter",
                                          "event=die")] == docs  # docker/cli's 'json'
    tmpl = replay(box, t0, "--filter", "event=die", "--format",
                  "{{.Status}} {{.Actor.Attributes.exitCode}} {{.From}} {{.Actor.ID}}")
    assert tmpl == [f"die 3 busybox {cid}"]


def test_filters(box: Box) -> None:
    t0 = since()
    box.ok("run", "--network", "none", "--name", "ev3", "-l", "tier=db", "busybox", "true")
    box.ok("run", "--network", "none", "--name", "ev4", "-l", "tier=web", "busybox", "true")
    box.ok("tag", "busybox", "ev-busybox:two")
    names = replay(box, t0, "--format", "{{.Actor.Attributes.name}}", "--filter", "event=start")
    assert names == ["ev3", "ev4"]
    assert replay(box, t0, "--format", "{{.Action}}", "--filter", "label=tier=web",
                  "--filter", "event=die") == ["die"]
    assert replay(box, t0, "--format", "{{.Actor.Attributes.name}}", "--filter", "label=tier",
                  "--filter", "event=create") == ["ev3", "ev4"]
    assert actions(box, t0, "--filter", "type=image") == ["image tag"]
    both = actions(box, t0, "--filter", "event=create", "--filter", "event=tag")
    assert both == ["container create", "container create", "image tag"]
    cid = box.inspect("ev3", "{{.Id}}")
    by_id = actions(box, t0, "--filter", f"container={cid[:10]}")
    # a foreground run attaches before it starts, as docker's CLI does
    assert by_id == ["container create", "container attach", "container start",
                     "container die"]
    assert len(actions(box, t0, "--filter", "image=busybox", "--filter", "type=container")) == 8
    box.ok("rmi", "ev-busybox:two")
    assert actions(box, t0, "--filter", "type=image") == ["image tag", "image untag"]


def test_restart_policy_oom_and_health_events(box: Box) -> None:
    t0 = since()
    box.ok("run", "-d", "--network", "none", "--name", "ev5", "--restart", "on-failure:1",
           "busybox", "sh", "-c", "exit 4")
    wait_until(lambda: box.inspect("ev5", "{{.RestartCount}} {{.State.Status}}") == "1 exited",
               timeout=20)
    assert actions(box, t0, "--filter", "container=ev5") == [
        "container create", "container start", "container die", "container restart",
        "container start", "container die"]
    box.ok("run", "-d", "--network", "none", "--name", "ev6", "--health-cmd", "true",
           "--health-interval", "100ms", "busybox", "sleep", "30")
    wait_until(lambda: box.inspect("ev6", "{{.State.Health.Status}}") == "healthy", timeout=20)
    health = actions(box, t0, "--filter", "event=health_status")  # docker: a prefix match
    assert health == ["container health_status: healthy"]
    assert box("run", "--network", "none", "--name", "ev7", "-m", "8m", "--memory-swap", "8m",
               "busybox", "sh", "-c", "head -c 100000000 /dev/zero | tail").returncode == 137
    ev7 = actions(box, t0, "--filter", "container=ev7")
    assert ev7[-2:] == ["container oom", "container die"], ev7


def test_pause_update_network_and_volume_events(box: Box) -> None:
    t0 = since()
    box.ok("run", "-d", "--network", "none", "--name", "ev8", "busybox", "sleep", "30")
    box.ok("pause", "ev8")
    box.ok("unpause", "ev8")
    box.ok("update", "--pids-limit", "50", "ev8")
    box.ok("volume", "create", "ev-vol")
    box.ok("volume", "rm", "ev-vol")
    assert actions(box, t0, "--filter", "container=ev8", "--filter", "event=pause",
                   "--filter", "event=unpause", "--filter", "event=update") == [
        "container pause", "container unpause", "container update"]
    box.ok("restart", "-t", "1", "ev8")
    assert actions(box, t0, "--filter", "container=ev8")[-5:] == [
        "container kill", "container die", "container stop", "container start",
        "container restart"]
    net = box.ok("network", "create", "ev-net").strip()
    cid = box.ok("run", "-d", "busybox", "sleep", "30").strip()  # on the default bridge
    box.ok("network", "connect", "ev-net", cid)
    box.ok("network", "disconnect", "ev-net", cid)
    box.ok("rm", "-f", cid)
    box.ok("network", "rm", "ev-net")
    nets = replay(box, t0, "--filter", "type=network", "--filter", "network=ev-net")
    assert [n.split()[2:4] for n in nets] == [["create", net], ["connect", net],
                                              ["disconnect", net], ["destroy", net]]
    assert nets[1].endswith(f"(container={cid}, name=ev-net, type=bridge)")
    vols = replay(box, t0, "--filter", "type=volume")
    assert [v.split()[2:4] for v in vols] == [["create", "ev-vol"], ["destroy", "ev-vol"]]
    assert all(v.endswith("(driver=local)") for v in vols)


def test_streams_until_sigint_or_sigterm(box: Box) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([BOX, "events", "--filter", "event=start", "--format",
                                 "{{.Actor.Attributes.name}}"], env=box.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            name = f"ev-stream-{sig.name.lower()}"
            box.ok("run", "--network", "none", "--name", name, "busybox", "true")
            assert proc.stdout is not None and proc.stdout.readline() == name + "\n"
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        assert (proc.returncode, out, err) == (0, "", "")


def test_until_in_the_future_follows_then_exits(box: Box) -> None:
    t0 = time.monotonic()
    proc = box("events", "--since", "0s", "--until", "-1s")
    assert proc.returncode == 0 and 0.8 < time.monotonic() - t0 < 10


@pytest.mark.parametrize("args,code,message", [
    (("--since", "yesterday"), 125,
     'box: failed to parse value as time or duration: "yesterday"\n'),
    (("--until", "2026-99-01"), 125, None),
    (("--filter", "nonsense", "--until", "0s"), 125,
     "box: bad format of filter (expected name=value): nonsense\n"),
    (("--since", "10s", "--until", "1m"), 1, None),
])
def test_refusals_are_one_line_with_dockers_codes(box: Box, args: tuple[str, ...], code: int,
                                                  message: str | None) -> None:
    proc = box("events", *args, timeout=10)
    assert proc.returncode == code
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    if message is not None:
        assert proc.stderr == message


def test_an_unwritable_journal_never_fails_a_command(make_box, busybox_tar: Path,
                                                     tmp_path: Path) -> None:
    box = make_box(tmp_path / "root", tmp_path / "run")
    box.ok("import", str(busybox_tar), "busybox")
    (tmp_path / "root" / "events").mkdir(exist_ok=True)
    for name in ("events.jsonl", ):
        (tmp_path / "root" / "events" / name).unlink(missing_ok=True)
    # a directory where the journal file should be: every append fails with EISDIR
    (tmp_path / "root" / "events" / "events.jsonl").mkdir()
    proc = box("run", "--rm", "--network", "none", "busybox", "echo", "hi")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "hi\n", "")
    proc = box("events", "--since", "1h", "--until", "0s")
    assert proc.returncode == 0


def test_filter_rules_are_mobys() -> None:
    from formats.events import message
    from runtime.commands.events import matches, parse_filters, pretty

    start = message("container", "start", "abc123" + "0" * 58,
                    {"name": "web", "image": "busybox:1.36", "tier": "db"},
                    1_700_000_000_000_000_005)
    health = message("container", "health_status: healthy", "abc", {"name": "web"})
    tag = message("image", "tag", "sha256:ff", {"name": "app:2"})

    def m(msg: dict, *items: str) -> bool:
        return matches(msg, parse_filters(list(items)))

    assert m(start) and m(start, "container=web") and m(start, "container=abc1")
    assert m(start, "container=we") and not m(start, "container=bc")  # prefixes, as moby
    assert m(start, "image=busybox") and m(start, "image=busybox:1.36")
    assert not m(start, "image=busy")
    assert m(tag, "image=app") and m(tag, "image=sha256:ff") and not m(tag, "type=container")
    assert m(start, "label=tier") and m(start, "label=tier=db")
    assert not m(start, "label=tier=web") and not m(start, "label=tier", "label=zone")
    assert m(health, "event=health_status") and not m(health, "event=start")
    assert m(start, "event=die", "event=start") and not m(start, "event=star")
    assert m(start, "type=image", "type=container") and not m(start, "scope=swarm")
    assert pretty(start) == ("2023-11-14T22:13:20.000000005Z container start "
                             f"abc123{'0' * 58} (image=busybox:1.36, name=web, tier=db)\n")


def test_rename_and_commit_events(box: Box) -> None:
    t0 = since()
    cid = box.ok("create", "--network", "none", "--name", "ev9", "busybox", "true").strip()
    box.ok("rename", "ev9", "ev10")
    image = box.ok("commit", "-m", "snap", "ev10", "ev-commit:1").strip()
    got = replay(box, t0, "--filter", f"container={cid}", "--format",
                 "{{.Action}} {{json .Actor.Attributes}}")
    assert [g.split(" ", 1)[0] for g in got] == ["create", "rename", "commit"]
    assert json.loads(got[1].split(" ", 1)[1]) == {"image": "busybox", "name": "ev10",
                                                   "oldName": "/ev9"}
    commit = json.loads(got[2].split(" ", 1)[1])
    assert (commit["comment"], commit["imageID"], commit["imageRef"]) == \
        ("snap", image, "ev-commit:1")
    box.ok("rmi", "-f", "ev-commit:1")


def test_commit_pauses_a_running_container_unless_told_not_to(box: Box) -> None:
    t0 = since()
    cid = box.ok("run", "-d", "--network", "none", "--name", "ev-cp", "busybox",
                 "sh", "-c", "echo x > /made; sleep 60").strip()
    box.ok("commit", "ev-cp", "ev-cp:1")
    box.ok("commit", "--pause=false", "ev-cp", "ev-cp:2")
    got = replay(box, t0, "--filter", f"container={cid}", "--format", "{{.Action}}")
    # docker: pause, commit, unpause around the first; the second reads it running
    assert got == ["create", "start", "pause", "commit", "unpause", "commit"], got
    assert box.inspect("ev-cp", "{{.State.Status}}") == "running"
    assert box.ok("run", "--rm", "--network", "none", "ev-cp:2", "cat", "/made") == "x\n"
    box.ok("rm", "-f", "ev-cp")
    box.ok("rmi", "ev-cp:1", "ev-cp:2")


def test_image_prune_journals_untag_and_delete(box: Box) -> None:
    t0 = since()
    cid = box.ok("create", "--network", "none", "busybox", "true").strip()
    image = box.ok("commit", "-c", "LABEL ev.prune=yes", cid, "ev-prune:1").strip()
    box.ok("rm", cid)
    # only the labelled image: the session's busybox stays
    box.ok("image", "prune", "-a", "-f", "--filter", "label=ev.prune=yes")
    assert box("image", "inspect", "busybox").returncode == 0
    got = replay(box, t0, "--filter", "type=image", "--filter", f"image={image}", "--format",
                 "{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"ev.prune\"}}")
    assert got == [f"untag {image} yes", f"delete {image} yes"]


def test_exec_events_carry_the_exec_id_and_exit_code(box: Box) -> None:
    t0 = since()
    cid = box.ok("run", "-d", "--network", "none", "--name", "ev-ex", "busybox",
                 "sleep", "60").strip()
    assert box("exec", "ev-ex", "sh", "-c", "exit 5").returncode == 5
    box.ok("exec", "-d", "ev-ex", "sleep", "0.3")
    wait_until(lambda: len(replay(box, t0, "--filter", "event=exec_die")) == 2, timeout=10)
    got = replay(box, t0, "--filter", f"container={cid}", "--filter", "event=exec_create",
                 "--filter", "event=exec_start", "--filter", "event=exec_die", "--format",
                 "{{.Action}}|{{.Actor.Attributes.execID}}|{{.Actor.Attributes.exitCode}}")
    rows = [g.split("|") for g in got]
    # moby's Action: the prefix, then Entrypoint + " " + Args
    assert [r[0] for r in rows] == ["exec_create: sh -c exit 5", "exec_start: sh -c exit 5",
                                    "exec_die", "exec_create: sleep 0.3",
                                    "exec_start: sleep 0.3", "exec_die"]
    assert [r[2] for r in rows] == ["<no value>"] * 2 + ["5"] + ["<no value>"] * 2 + ["0"]
    assert rows[0][1] == rows[1][1] == rows[2][1] and re.fullmatch(r"[0-9a-f]{64}", rows[0][1])
    assert rows[3][1] == rows[4][1] == rows[5][1] != rows[0][1]
    box.ok("rm", "-f", "ev-ex")


def test_attach_cp_and_export_events(box: Box, tmp_path: Path) -> None:
    t0 = since()
    box.ok("create", "--network", "none", "--name", "ev-sa", "busybox", "true")
    box.ok("start", "-a", "ev-sa")
    assert actions(box, t0, "--filter", "container=ev-sa") == [
        "container create", "container attach", "container start", "container die"]
    box.ok("rm", "ev-sa")
    cid = box.ok("run", "-d", "--network", "none", "--name", "ev-io", "busybox", "sh", "-c",
                 TRAP).strip()
    proc = subprocess.Popen([BOX, "attach", "ev-io"], env=box.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: replay(box, t0, "--filter", "event=attach") != [], timeout=10)
        box.ok("stop", "ev-io")
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    box.ok("cp", "ev-io:/etc/hostname", str(tmp_path / "h"))
    (tmp_path / "in").write_text("x")
    box.ok("cp", str(tmp_path / "in"), "ev-io:/in")
    box.ok("export", "-o", str(tmp_path / "fs.tar"), "ev-io")
    got = replay(box, t0, "--filter", f"container={cid}", "--format", "{{.Action}}")
    # moby: attach; cp out is archive-path, cp in is extract-to-dir; export
    assert [g for g in got if g not in ("create", "start", "kill", "die", "stop")] == [
        "attach", "archive-path", "extract-to-dir", "export"], got
    assert box("cp", "ev-io:/nonexistent", str(tmp_path / "n")).returncode != 0
    assert replay(box, t0, "--filter", "event=archive-path", "--format", "{{.Action}}") == \
        ["archive-path"]  # a failed copy journals nothing


def test_image_import_save_load_events(make_box, busybox_tar: Path, tmp_path: Path) -> None:
    box = make_box(tmp_path / "root", tmp_path / "run")
    t0 = since()
    image = box.ok("import", str(busybox_tar), "ev-imp:1").strip()
    box.ok("save", "-o", str(tmp_path / "s.tar"), "ev-imp:1", image)
    box.ok("rmi", "ev-imp:1")
    box.ok("load", "-i", str(tmp_path / "s.tar"))
    got = replay(box, t0, "--filter", "event=import", "--filter", "event=save", "--filter",
                 "event=load", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
                 "{{.Actor.Attributes.name}}")
    # moby's LogImageEvent(id, id, action): the image ID as actor and name, once per image
    assert got == [f"image {a} {image} {image}" for a in ("import", "save", "load")]


@pytest.mark.slow
def test_push_event_names_the_repository(box: Box) -> None:
    from tests.support.registry import registry

    t0 = since()
    with registry() as reg:
        target = f"{reg.host}/ev/push:1"
        box.ok("tag", "busybox", target)
        box.ok("push", target)
        box.ok("rmi", target)
    got = replay(box, t0, "--filter", "event=push", "--format",
                 "{{.Type}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    assert got == [f"image {target} {reg.host}/ev/push"]  # FamiliarString, FamiliarName


def test_network_connect_on_start_and_disconnect_before_die(box: Box) -> None:
    net = box.ok("network", "create", "ev-net2").strip()
    t0 = since()
    cid = box.ok("run", "-d", "--network", "ev-net2", "--name", "ev-nc", "busybox", "sh",
                 "-c", TRAP).strip()
    box.ok("stop", "ev-nc")
    rows = replay(box, t0, "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
                  "{{json .Actor.Attributes}}")
    mine = [r.split(" ", 3) for r in rows if cid in r]
    # moby: connectToNetwork before start; releaseNetwork (disconnect) before die
    assert [(t, a) for t, a, _, _ in mine] == [
        ("container", "create"), ("network", "connect"), ("container", "start"),
        ("container", "kill"), ("network", "disconnect"), ("container", "die"),
        ("container", "stop")], mine
    assert mine[1][2] == mine[4][2] == net
    assert json.loads(mine[1][3]) == {"container": cid, "name": "ev-net2", "type": "bridge"}
    assert [r for r in rows if r.startswith("network") and cid not in r] == []
    box.ok("rm", "ev-nc")
    box.ok("network", "rm", "ev-net2")


def test_none_and_host_are_networks_too_and_container_mode_has_none(box: Box) -> None:
    """moby's connectToNetwork/releaseNetwork run for the predefined ``none`` (driver
    null) and ``host`` networks as for a bridge; ``container:X`` returns early."""
    ids = dict(line.split() for line in box.ok(
        "network", "ls", "--no-trunc", "--format", "{{.Name}} {{.ID}}").splitlines())
    t0 = since()
    none = box.ok("run", "-d", "--network", "none", "--name", "ev-none", "busybox", "sh", "-c",
                  TRAP).strip()
    host = box.ok("run", "-d", "--network", "host", "--name", "ev-host", "busybox", "sh",
                  "-c", TRAP).strip()
    joined = box.ok("run", "-d", "--network", "container:ev-none", "--name", "ev-joined",
                    "busybox", "sh", "-c", TRAP).strip()
    box.ok("stop", "ev-joined", "ev-host", "ev-none")
    box.ok("run", "--rm", "--network", "none", "busybox", "true")  # the fast path too
    rows = replay(box, t0, "--format", "{{.Type}} {{.Action}} {{.Actor.ID}} "
                  "{{json .Actor.Attributes}}")
    for cid, name, driver in ((none, "none", "null"), (host, "host", "host")):
        mine = [r.split(" ", 3) for r in rows if cid in r]
        assert [(t, a) for t, a, _, _ in mine] == [
            ("container", "create"), ("network", "connect"), ("container", "start"),
            ("container", "kill"), ("network", "disconnect"), ("container", "die"),
            ("container", "stop")], mine
        assert mine[1][2] == mine[4][2] == ids[name]  # the id `box network ls` shows
        assert json.loads(mine[1][3]) == json.loads(mine[4][3]) == {
            "container": cid, "name": name, "type": driver}
    assert not [r for r in rows if r.startswith("network") and joined in r]
    nets = [r.split(" ", 3) for r in rows if r.startswith("network")]
    assert len(nets) == 6 and {n[2] for n in nets} == {ids["none"], ids["host"]}
    # moby's filter: container= matches an event's actor (id or name), so never a
    # network event, whatever its container attribute says
    assert replay(box, t0, "--filter", "type=network", "--filter", "network=none",
                  "--filter", "container=ev-none", "--format", "{{.Action}}") == []
    assert replay(box, t0, "--filter", "type=network", "--filter", f"network={ids['host']}",
                  "--format", "{{.Action}}") == ["connect", "disconnect"]
    box.ok("rm", "ev-none", "ev-host", "ev-joined")


def test_type_and_event_values_are_free_form_as_in_moby(box: Box) -> None:
    """moby validates neither (daemon/events/filter.go: ExactMatch): an unknown type or
    action matches nothing, with no error."""
    t0 = since()
    box.ok("run", "--rm", "--network", "none", "--name", "ev-ff", "busybox", "true")
    for flt in ("type=foo", "event=no-such-action", "type=Container"):
        proc = box("events", "--since", t0, "--until", since(), "--filter", flt)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), flt
    assert actions(box, t0, "--filter", "type=foo", "--filter", "type=container",
                   "--filter", "event=start", "--filter", "event=bogus") == ["container start"]
    # nor any key: the events route of moby runs no Validate, an unknown key is ignored
    assert actions(box, t0, "--filter", "colour=red", "--filter", "container=ev-ff") == \
        actions(box, t0, "--filter", "container=ev-ff") != []


def test_network_connect_of_a_stopped_container_is_journaled_at_its_start(box: Box) -> None:
    net = box.ok("network", "create", "ev-net3").strip()
    t0 = since()
    cid = box.ok("create", "--name", "ev-ns", "busybox", "true").strip()  # default bridge
    box.ok("network", "connect", "ev-net3", "ev-ns")
    assert replay(box, t0, "--filter", "network=ev-net3") == []  # moby: config only
    box.ok("start", "-a", "ev-ns")
    got = replay(box, t0, "--filter", "network=ev-net3", "--format",
                 "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.container}}")
    assert got == [f"connect {net} {cid}", f"disconnect {net} {cid}"]
    box.ok("rm", "ev-ns")
    box.ok("network", "rm", "ev-net3")
