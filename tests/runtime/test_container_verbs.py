"""``box rename``, ``diff``, ``commit``, ``attach``, ``container prune`` and ``system
prune`` on real containers: docker's output, the state they change, and bad input."""

from __future__ import annotations

import json
import subprocess
import time

from tests.conftest import BOX, Box
from tests.support.wait import wait_until


def _run(box: Box, *args: str) -> str:
    return box.ok("run", "-d", "--network", "none", *args).strip()


def test_rename_moves_the_name_and_refuses_taken_and_same_names(box: Box) -> None:
    a = _run(box, "--name", "rn-a", "busybox", "sleep", "30")
    b = box.ok("create", "--network", "none", "--name", "rn-b", "busybox", "true").strip()
    assert box("rename", "rn-a", "rn-new").returncode == 0
    assert box.inspect(a, "{{.Name}}") == "/rn-new"
    assert box.inspect("rn-new", "{{.Id}}") == a
    assert (box.root / "names" / "rn-new").read_text() == a
    assert not (box.root / "names" / "rn-a").exists()
    assert box("inspect", "rn-a").returncode == 1
    proc = box("rename", "rn-new", "rn-b")
    assert proc.returncode == 1
    assert proc.stderr == (f'box: Conflict. The container name "/rn-b" is already in use by '
                           f'container "{b}". You have to remove (or rename) that container '
                           "to be able to reuse that name.\n")
    assert box.inspect(a, "{{.Name}}") == "/rn-new"  # nothing changed
    proc = box("rename", "rn-new", "rn-new")
    assert proc.returncode == 1 and "Renaming a container with the same name" in proc.stderr
    proc = box("rename", "rn-new", "bad name!")
    assert proc.returncode == 1 and 'Invalid container name ("bad name!")' in proc.stderr
    assert "rn-new" in box.ok("ps", "--format", "{{.Names}}").split()
    # the old name is free again
    box.ok("create", "--network", "none", "--name", "rn-a", "busybox", "true")


def test_rename_rewrites_peers_hosts_on_a_user_network(box: Box) -> None:
    box.ok("network", "create", "rn-net")
    try:
        _run_net = ["run", "-d", "--network", "rn-net"]
        box.ok(*_run_net, "--name", "rn-one", "busybox", "sleep", "30")
        box.ok(*_run_net, "--name", "rn-two", "busybox", "sleep", "30")
        box.ok("rename", "rn-one", "rn-uno")
        hosts = box.ok("exec", "rn-two", "cat", "/etc/hosts")
        assert "rn-uno" in hosts and "rn-one" not in hosts
    finally:
        box("rm", "-f", "rn-one", "rn-uno", "rn-two")
        box("network", "rm", "rn-net")


def test_diff_reports_added_changed_and_deleted_in_dockers_order(box: Box) -> None:
    cid = _run(box, "busybox", "sh", "-c",
               "mkdir -p /new/sub && echo x > /new/sub/f && rm /bin/true && "
               "echo more >> /etc/passwd && rm -rf /root && mkdir /root && touch /root/n && "
               "touch /done && sleep 30")
    wait_until(lambda: "A /done" in box.ok("diff", cid), timeout=20, what="the container's changes")
    assert box.ok("diff", cid).splitlines() == [
        "C /bin", "D /bin/true", "A /done", "C /etc", "C /etc/passwd",
        "A /new", "A /new/sub", "A /new/sub/f", "C /root", "A /root/n"]
    fresh = box.ok("create", "--network", "none", "busybox", "true").strip()
    assert box.ok("diff", fresh) == ""  # box's own mount points are not changes
    assert box.ok("container", "diff", cid) == box.ok("diff", cid)


def test_diff_judges_copied_up_entries_as_mobys_naive_differ(box: Box) -> None:
    # moby (overlay2 Changes = naive diff, go-archive statDifferent): a directory's
    # owner or mode is a change, its mtime alone is not; a copied-up file whose stat
    # did not change is not; a file's mtime is
    cid = _run(box, "busybox", "sh", "-c",
               "touch /tmp && chown 0:0 /etc/group && touch /etc/passwd && chown 1:1 /home "
               "&& rm -rf /usr && mkdir /usr && touch /usr/z && touch /marker && sleep 30")
    wait_until(lambda: "A /marker" in box.ok("diff", cid), timeout=20, what="the changes")
    # /usr removed and made again (opaque in the upper dir): C, what it hid D
    assert box.ok("diff", cid).splitlines() == [
        "C /etc", "C /etc/passwd", "C /home", "A /marker", "C /usr", "D /usr/bin",
        "D /usr/sbin", "A /usr/z"]


def test_commit_makes_an_image_of_the_changes_with_message_author_and_changes(box: Box) -> None:
    cid = _run(box, "-e", "KEEP=1", "busybox", "sh", "-c",
               "echo data > /made && rm /bin/true && touch /ok && sleep 30")
    wait_until(lambda: "A /ok" in box.ok("diff", cid), timeout=20, what="the changes")
    image_id = box.ok("commit", "-m", "a message", "-a", "Me <me@example.com>",
                      "-c", "ENV EXTRA=2", "-c", 'CMD ["cat", "/made"]', "-c", "EXPOSE 8080",
                      "-c", "LABEL team=web", "-c", "WORKDIR /srv", "-c", "USER 0",
                      "-c", "VOLUME /data", "-c", "STOPSIGNAL SIGINT",
                      cid, "committed:v1").strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    try:
        assert box.ok("run", "--rm", "--network", "none", "committed:v1") == "data\n"
        proc = box("run", "--rm", "--network", "none", "--entrypoint", "sh", "committed:v1",
                   "-c", "echo $KEEP $EXTRA; pwd; test -e /bin/true || echo gone")
        assert proc.stdout == "1 2\n/srv\ngone\n", proc.stderr
        cfg = json.loads(box.inspect("committed:v1", "{{json .Config}}"))
        assert cfg["ExposedPorts"] == {"8080/tcp": {}} and cfg["Labels"] == {"team": "web"}
        assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGINT"
        assert box.inspect("committed:v1", "{{.Author}}") == "Me <me@example.com>"
        assert box.inspect("committed:v1", "{{.Id}}") == image_id
        history = box.ok("history", "--format", "{{.Comment}}|{{.CreatedBy}}", "committed:v1")
        assert history.splitlines()[0].startswith("a message|sh -c echo data")
        layers = json.loads(box.inspect("committed:v1", "{{json .RootFS.Layers}}"))
        base = json.loads(box.inspect("busybox", "{{json .RootFS.Layers}}"))
        assert layers[:-1] == base and len(layers) == len(base) + 1
        # the image's layer is stored as pulled ones are: save works on it
        assert box("save", "-o", str(box.root.parent / "c.tar"), "committed:v1").returncode == 0
        proc = box("commit", "-c", "FROBNICATE x", cid)
        assert proc.returncode == 1 and "FROBNICATE is not a valid change command" in proc.stderr
        untagged = box.ok("commit", cid).strip()
        assert untagged.startswith("sha256:")
    finally:
        box("rm", "-f", cid)
        box("rmi", "committed:v1")
        box("image", "prune", "-f")


def test_attach_streams_new_output_and_exits_with_the_containers_code(box: Box) -> None:
    cid = _run(box, "busybox", "sh", "-c", "sleep 1; for i in 1 2 3 4 5 6 7 8 9 10 11 12; "
               "do echo tick; echo tock >&2; sleep 0.2; done; exit 3")
    proc = subprocess.Popen([BOX, "attach", cid], env=box.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "tick" in out and "tock" not in out and "tock" in err
    proc = box("attach", cid)
    assert (proc.returncode, proc.stderr) == (
        1, "box: You cannot attach to a stopped container, start it first\n")
    proc = box("attach", "--detach-keys", "ctrl-", cid)
    assert proc.returncode == 1 and "Invalid detach keys (ctrl-) provided" in proc.stderr


def test_attach_sig_proxy_forwards_sigterm_to_the_container(box: Box) -> None:
    cid = _run(box, "busybox", "sh", "-c", 'trap "echo got-term; exit 7" TERM; '
               "while true; do sleep 0.1; done")
    proc = subprocess.Popen([BOX, "attach", cid], env=box.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # attached and its handlers in place
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, (out, err)
    assert "got-term" in out


def test_container_prune_and_system_prune(box: Box) -> None:
    running = _run(box, "--name", "pr-run", "busybox", "sleep", "30")
    stopped = box.ok("create", "--network", "none", "busybox", "true").strip()
    proc = box("container", "prune", input=b"n\n")
    assert proc.stdout == ("WARNING! This will remove all stopped containers.\n"
                           "Are you sure you want to continue? [y/N] ")
    assert box.inspect(stopped, "{{.Id}}") == stopped
    out = box.ok("container", "prune", "-f")
    assert out.startswith(f"Deleted Containers:\n{stopped}\n\nTotal reclaimed space: ")
    assert box("inspect", stopped).returncode == 1
    assert box.inspect(running, "{{.State.Status}}") == "running"
    box.ok("network", "create", "pr-net")
    gone = box.ok("create", "--network", "none", "busybox", "true").strip()
    proc = box("system", "prune", "-a", "--volumes", input=b"no\n")
    assert proc.stdout == ("WARNING! This will remove:\n  - all stopped containers\n"
                           "  - all networks not used by at least one container\n"
                           "  - all anonymous volumes not used by at least one container\n"
                           "  - all images without at least one container associated to "
                           "them\n  - all build cache\n\n"
                           "Are you sure you want to continue? [y/N] ")
    out = box.ok("system", "prune", "-f")
    assert f"Deleted Containers:\n{gone}\n\n" in out and "Deleted Networks:\npr-net\n\n" in out
    assert out.splitlines()[-1].startswith("Total reclaimed space: ")
    assert "busybox" in box.ok("images")  # in use by the running one, and tagged
    assert box.inspect(running, "{{.State.Status}}") == "running"


def test_attach_detach_keys_on_a_terminal_leave_the_container_running(box: Box) -> None:
    import os
    import pty

    cid = _run(box, "busybox", "sh", "-c", "while true; do echo alive; sleep 0.2; done")
    for keys, typed in ((None, b"\x10\x11"), ("ctrl-a,x", b"\x01x")):
        master, slave = pty.openpty()
        flags = ["--detach-keys", keys] if keys else []
        proc = subprocess.Popen([BOX, "attach", *flags, cid], env=box.env, stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"alive\n"
            os.write(master, b"zz" + typed)  # other keys go nowhere; the sequence detaches
            assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)
        assert box.inspect(cid, "{{.State.Status}}") == "running"


def test_prune_filters_and_bad_input(box: Box) -> None:
    kept = box.ok("create", "--network", "none", "--label", "keep=yes", "busybox", "true").strip()
    other = box.ok("create", "--network", "none", "--label", "keep=no", "busybox", "true").strip()
    out = box.ok("container", "prune", "-f", "--filter", "label=keep=no")
    assert out.startswith(f"Deleted Containers:\n{other}\n\n")
    assert box.inspect(kept, "{{.Id}}") == kept
    assert box.ok("container", "prune", "-f", "--filter", "until=1h") == \
        "Total reclaimed space: 0B\n"  # created less than an hour ago: kept
    proc = box("container", "prune", "-f", "--filter", "colour=red")
    assert (proc.returncode, proc.stderr) == (1, "box: invalid filter 'colour'\n")
    proc = box("system", "prune", "--bogus")
    assert (proc.returncode, proc.stderr) == (125, "unknown flag: --bogus\n"
                                                   "See 'box system prune --help'.\n")
    proc = box("commit", kept, "bad::ref")
    assert proc.returncode == 1 and "bad::ref" in proc.stderr and "invalid reference" in proc.stderr
    box.ok("rm", kept)
    for argv in (("diff", kept), ("rename", kept, "x"), ("commit", kept), ("attach", kept)):
        proc = box(*argv)
        assert (proc.returncode, proc.stderr) == (1, f"box: No such container: {kept}\n"), argv
