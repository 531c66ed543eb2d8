"""`box run` / `create` / `start` on the real kernel: what the command sees inside the
container for each flag, and docker's output and exit codes around it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BOX, Box

DOCKER_DEFAULT_CAPS = 0x00000000A80425FB
CAP_NET_ADMIN = 1 << 12
CAP_CHOWN = 1 << 0


def cap_eff(box: Box, *flags: str) -> int:
    out = box.ok("run", *flags, "busybox", "grep", "CapEff", "/proc/self/status")
    return int(out.split()[1], 16)


def host_bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd in /proc/self/status")


@pytest.mark.parametrize("script, code", [("exit 0", 0), ("exit 3", 3), ("exit 255", 255),
                                          ("sh -c 'kill -9 $$'; exit $?", 137)])
def test_exit_code_is_the_commands(box: Box, script: str, code: int) -> None:
    assert box("run", "busybox", "sh", "-c", script).returncode == code


def test_pid_1_is_immune_to_its_own_sigkill_but_not_with_init(box: Box) -> None:
    """The kernel shields a pid namespace's init from signals sent inside it."""
    assert box("run", "busybox", "sh", "-c", "kill -9 $$; exit 5").returncode == 5
    assert box("run", "--init", "busybox", "sh", "-c", "kill -9 $$; exit 5").returncode == 137


def test_stdout_and_stderr_are_kept_apart(box: Box) -> None:
    proc = box("run", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (proc.stdout, proc.stderr, proc.returncode) == ("out\n", "err\n", 0)


def test_detached_prints_the_full_id_and_returns_at_once(box: Box) -> None:
    proc = box("run", "-d", "busybox", "sleep", "30", timeout=5)
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert box.inspect(cid, "{{.State.Running}}") == "true"


def test_create_then_start(box: Box) -> None:
    cid = box.ok("create", "--name", "later", "busybox", "sh", "-c", "echo started").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert box.inspect("later", "{{.State.Status}}") == "created"
    assert box.ok("start", "later").strip() == "later"
    assert box.ok("wait", "later").strip() == "0"
    assert box.ok("logs", "later") == "started\n"


def test_name_is_the_containers_name(box: Box) -> None:
    box.ok("run", "--name", "web", "busybox", "true")
    assert box.inspect("web", "{{.Name}}") == "/web"


def test_generated_names_never_collide(box: Box) -> None:
    """400 adjective_name pairs: a collision must be retried, not reported."""
    for _ in range(40):
        proc = box("create", "busybox", "true")
        assert proc.returncode == 0, proc.stderr
    names = box.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert len(set(names)) == 40


def test_env_flags_and_env_file(box: Box, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=file value\nBOTH=file\n\n")
    out = box.ok("run", "--env-file", str(env_file), "-e", "A=1", "-e", "BOTH=flag",
                 "-e", "EMPTY=", "busybox", "env")
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert env["A"] == "1"
    assert env["FROM_FILE"] == "file value"
    assert env["BOTH"] == "flag"
    assert env["EMPTY"] == ""
    assert env["PATH"].startswith("/usr/local/sbin")
    assert env["HOME"] == "/root"
    assert len(env["HOSTNAME"]) == 12


def test_workdir_is_created_if_missing(box: Box) -> None:
    assert box.ok("run", "-w", "/made/for/you", "busybox", "pwd") == "/made/for/you\n"


@pytest.mark.parametrize("user, expected", [
    ("app", "uid=1000(app) gid=1000(app)"),
    ("1000:1000", "uid=1000(app) gid=1000(app)"),
    ("0", "uid=0(root) gid=0(root)"),
    ("nobody", "uid=65534(nobody) gid=65534(nogroup)"),
])
def test_user(box: Box, user: str, expected: str) -> None:
    assert box.ok("run", "-u", user, "busybox", "id").startswith(expected)


def test_unknown_user_is_refused(box: Box) -> None:
    proc = box("run", "-u", "nosuchuser", "busybox", "id")
    assert proc.returncode == 125
    assert "nosuchuser" in proc.stderr
    assert proc.stdout == ""


def test_non_root_user_has_no_capabilities(box: Box) -> None:
    assert cap_eff(box, "-u", "app") == 0


def test_hostname(box: Box) -> None:
    assert box.ok("run", "-h", "myhost", "busybox", "hostname") == "myhost\n"
    cid = box.ok("run", "-d", "busybox", "sleep", "30").strip()
    assert box.ok("exec", cid, "hostname") == cid[:12] + "\n"
    assert box.ok("exec", cid, "cat", "/etc/hostname") == cid[:12] + "\n"


def test_labels_in_inspect(box: Box) -> None:
    box.ok("run", "--name", "lab", "--label", "team=obs", "-l", "flag", "busybox", "true")
    assert box.inspect("lab", "{{json .Config.Labels}}") == '{"flag":"","team":"obs"}'


def test_entrypoint_replaces_the_images_and_takes_the_args(box: Box) -> None:
    assert box.ok("run", "--entrypoint", "echo", "busybox", "a", "b") == "a b\n"
    assert box.inspect(box.ok("ps", "-alq", "--no-trunc").strip(),
                       "{{json .Config.Entrypoint}} {{json .Config.Cmd}}") == '["echo"] ["a","b"]'


def test_interactive_pipes_stdin_through(box: Box) -> None:
    assert box("run", "-i", "busybox", "cat", input=b"hello\nworld").stdout == "hello\nworld"


def test_without_interactive_stdin_is_empty(box: Box) -> None:
    assert box("run", "busybox", "cat", input=b"hello").stdout == ""


def test_tty_gives_a_terminal(box: Box) -> None:
    assert box("run", "busybox", "sh", "-c", "[ -t 0 ] || [ -t 1 ]").returncode == 1
    assert box("run", "-t", "busybox", "sh", "-c", "[ -t 0 ] && [ -t 1 ]").returncode == 0
    assert box.ok("run", "-t", "busybox", "sh", "-c", "echo $TERM").strip() == "xterm"


def test_tty_is_dev_pts_0_of_the_container(box: Box) -> None:
    """The pty comes from the container's own devpts instance, as with runc's console."""
    assert box.ok("run", "-t", "busybox", "tty").strip() == "/dev/pts/0"
    listing = box.ok("run", "-t", "busybox", "ls", "/dev/pts")
    assert listing.split() == ["0", "ptmx"]


def test_rm_leaves_nothing(box: Box) -> None:
    before = {p.name for p in (box.root / "containers").iterdir()}
    assert box("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "exit 2").returncode == 2
    assert box.ok("ps", "-aq") == ""
    assert {p.name for p in (box.root / "containers").iterdir()} == before
    assert not (box.root / "names" / "gone").exists()
    assert list((box.root / "overlay2").iterdir()) == []
    assert list((box.exec_root / "containers").iterdir()) == []


def test_read_only_rootfs(box: Box) -> None:
    out = box.ok("run", "--read-only", "busybox", "sh", "-c",
                 "touch /x; echo $?; touch /tmp/x; echo $?; touch /dev/shm/x; echo $?")
    assert out.split() == ["1", "1", "0"]
    assert box.ok("run", "busybox", "sh", "-c", "touch /x /tmp/x; echo $?").strip() == "0"


def test_init_is_pid_1_and_reaps_zombies(box: Box) -> None:
    # The command's orphans (here a backgrounded sleep that exits) are re-parented to
    # PID 1; with --init PID 1 reaps them, so no zombie remains.
    script = "sh -c 'sleep 0.1 &' ; sleep 0.5; ps -o pid,stat,comm"
    out = box.ok("run", "--init", "busybox", "sh", "-c", script)
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert rows[0][0] == "1" and rows[0][2] != "sh"
    assert not [r for r in rows if r[1].startswith("Z")], out
    assert box("run", "--init", "busybox", "sh", "-c", "exit 4").returncode == 4


def test_command_is_pid_1_without_init(box: Box) -> None:
    out = box.ok("run", "busybox", "ps", "-o", "pid,comm")
    assert out.split()[2:] == ["1", "ps"]


@pytest.mark.parametrize("flags, expected", [
    ((), DOCKER_DEFAULT_CAPS),
    (("--cap-drop", "ALL"), 0),
    (("--cap-add", "NET_ADMIN"), DOCKER_DEFAULT_CAPS | CAP_NET_ADMIN),
    (("--cap-add", "cap_net_admin"), DOCKER_DEFAULT_CAPS | CAP_NET_ADMIN),
    (("--cap-drop", "CHOWN"), DOCKER_DEFAULT_CAPS & ~CAP_CHOWN),
    (("--cap-drop", "ALL", "--cap-add", "CHOWN"), CAP_CHOWN),
])
def test_capabilities(box: Box, flags: tuple[str, ...], expected: int) -> None:
    assert cap_eff(box, *flags) == expected


def test_privileged_has_every_capability_the_host_has(box: Box) -> None:
    assert cap_eff(box, "--privileged") == host_bounding_set()
    out = box.ok("run", "--privileged", "busybox", "sh", "-c",
                 "grep ' /sys ' /proc/mounts")
    assert " rw," in out


def test_namespaces_are_the_containers(box: Box) -> None:
    cid = box.ok("run", "-d", "--name", "ns", "busybox", "sleep", "30").strip()
    assert box.ok("exec", "ns", "ls", "/").split() == [
        "bin", "dev", "etc", "home", "linuxrc", "proc", "root", "sbin", "sys", "tmp", "usr"]
    cgroup = box.ok("exec", "ns", "cat", "/proc/1/cgroup")
    for ctrl in ("memory", "cpu", "pids", "cpuset", "blkio"):
        assert re.search(rf"^\d+:{ctrl}:/box/{cid}$", cgroup, re.M), cgroup
    assert box.ok("exec", "ns", "ps", "-o", "pid,args").splitlines()[1].split() == [
        "1", "sleep", "30"]
    pid = box.inspect("ns", "{{.State.Pid}}")
    for ns in ("ipc", "mnt", "net", "pid", "uts"):
        assert Path(f"/proc/{pid}/ns/{ns}").readlink() != Path(f"/proc/self/ns/{ns}").readlink()


def test_the_default_network_is_the_bridge(box: Box) -> None:
    """As docker: no --network is ``bridge`` (eth0 on the root's default bridge)."""
    cid = box.ok("run", "-d", "busybox", "sleep", "30").strip()
    assert box.inspect(cid, "{{.HostConfig.NetworkMode}}") == "bridge"
    ip = box.inspect(cid, "{{.NetworkSettings.IPAddress}}")
    assert ip.startswith(box.subnet.rsplit(".", 1)[0] + "."), ip
    ifaces = box.ok("exec", cid, "ls", "/sys/class/net").split()
    assert sorted(ifaces) == ["eth0", "lo"]
    box.ok("rm", "-f", cid)


def test_box_default_network_env_overrides_the_default(box: Box) -> None:
    env = {**box.env, "BOX_DEFAULT_NETWORK": "none"}
    proc = subprocess.run([BOX, "run", "busybox", "ls", "/sys/class/net"], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["lo"]


def test_network_none_has_only_lo_and_it_is_up(box: Box) -> None:
    out = box.ok("run", "--network", "none", "busybox", "sh", "-c",
                 "tail -n +3 /proc/net/dev | cut -d: -f1; cat /sys/class/net/lo/flags")
    *ifaces, flags = out.split()
    assert ifaces == ["lo"]
    assert int(flags, 16) & 0x1, "IFF_UP"
    assert box.ok("run", "--network", "none", "busybox", "ping", "-c1", "-W1",
                  "127.0.0.1").count("1 packets received") == 1


def test_network_host_sees_the_hosts_interfaces(box: Box) -> None:
    # containers' veths (vbox*) come and go with other containers meanwhile: compared
    # without them, the two lists are the host's
    def steady(names: list[str]) -> list[str]:
        return sorted(n.strip() for n in names if not n.strip().startswith("vbox"))

    host = steady([ln.split(":")[0] for ln in Path("/proc/net/dev").read_text().splitlines()[2:]])
    out = box.ok("run", "--network", "host", "busybox", "sh", "-c",
                 "tail -n +3 /proc/net/dev | cut -d: -f1")
    assert steady(out.split()) == host
    assert len(host) > 1


def test_dev_has_the_usual_nodes(box: Box) -> None:
    out = box.ok("run", "busybox", "ls", "/dev")
    for node in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
                 "fd", "stdin", "stdout", "stderr"):
        assert node in out.split(), node
    assert box.ok("run", "busybox", "sh", "-c",
                  "head -c 3 /dev/zero | wc -c; echo x > /dev/null; echo $?; "
                  "echo x > /dev/full; echo $?").split() == ["3", "0", "1"]
    assert " /dev/shm " in box.ok("run", "busybox", "cat", "/proc/mounts")


def test_proc_and_sys_are_read_only_where_docker_makes_them(box: Box) -> None:
    mounts = {}
    for line in box.ok("run", "busybox", "cat", "/proc/mounts").splitlines():
        _src, point, _fs, opts, *_ = line.split()
        mounts[point] = opts.split(",")
    assert "ro" in mounts["/sys"]
    assert "rw" in mounts["/proc"]
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"):
        if Path(path).exists():  # this kernel may lack some (no sysrq here)
            assert "ro" in mounts[path], path
    assert box("run", "busybox", "sh", "-c",
               "echo 1 > /proc/sys/kernel/ns_last_pid").returncode != 0
    # masked: /proc/keys reads as empty, as /dev/null does
    assert "/proc/keys" in mounts and "/proc/timer_list" in mounts
    assert box.ok("run", "busybox", "cat", "/proc/keys", "/proc/timer_list") == ""


def test_signals_reach_the_command_with_default_dispositions(box: Box) -> None:
    """The monitor ignores SIGTERM and Python ignores SIGPIPE; the command must not."""
    out = box.ok("run", "busybox", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
    assert [ln.split()[1] for ln in out.splitlines()] == ["0" * 16, "0" * 16]


@pytest.fixture
def signals_restored() -> Iterator[None]:
    """_wait_attached installs box run's signal proxy (SIGINT, SIGTERM, ... to the
    container; with pid 0, to nothing): the test process gets its own handlers back, or
    ^C and SIGTERM would be ignored for the rest of the session."""
    proxied = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
               signal.SIGUSR2)
    saved = {sig: signal.getsignal(sig) for sig in proxied}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("signals_restored")
def test_exit_read_together_with_started_is_not_lost() -> None:
    """On a loaded machine one read of the monitor's status pipe can bring "started" and
    "exit" at once; the exit code must survive the hand-over from start to the wait (it
    was lost, and `box run` exited 125 with nothing on stderr)."""
    from runtime.commands.run import _wait_attached
    from runtime.containers import StatusReader

    r, w = os.pipe()
    os.write(w, b"started 1\nexit 3\n")
    os.close(w)
    reader = StatusReader(r)
    assert reader.next() == ("started", "1")  # what Containers.start reads
    assert _wait_attached(0, reader, tty=False) == 3


@pytest.mark.usefixtures("signals_restored")
def test_monitor_gone_without_exit_is_said(capfd: pytest.CaptureFixture[str]) -> None:
    from runtime.commands.run import _wait_attached
    from runtime.containers import StatusReader

    r, w = os.pipe()
    os.write(w, b"started 1\n")
    os.close(w)
    reader = StatusReader(r)
    reader.next()
    assert _wait_attached(0, reader, tty=False) == 125
    assert "monitor ended without reporting the exit code" in capfd.readouterr().err
