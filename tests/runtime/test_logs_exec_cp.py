"""The json-file log as the monitor writes it (parsed by the shipper's one parser),
rotation, `box logs`, `box exec` and `box cp` (including CVE-2018-15664)."""

from __future__ import annotations

import gzip
import re
import subprocess
import time
from pathlib import Path

import pytest

from formats.jsonfile.parser import parse_line
from formats.logentry import LogEntry
from tests.conftest import BOX, Box

RFC3339NANO_UTC = re.compile(rb'"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"}$')


def log_files(box: Box, cid: str) -> list[str]:
    return sorted(p.name.removeprefix(cid) for p in (box.root / "containers" / cid).iterdir()
                  if p.name.startswith(cid))


def entries(path: Path) -> list[LogEntry]:
    """Every line of one log file, parsed; any bad line fails the test."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    assert data.endswith(b"\n")
    out = []
    for raw in data.split(b"\n")[:-1]:
        assert RFC3339NANO_UTC.search(raw), raw
        out.append(parse_line(raw))
    return out


def log_of(box: Box, cid: str) -> list[LogEntry]:
    return entries(Path(box.inspect(cid, "{{.LogPath}}")))


def rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


# -- the json-file log ----------------------------------------------------------------

def test_a_40000_byte_line_is_logged_as_moby_does(box: Box) -> None:
    """Through the real monitor: a 40,000-byte line written in two halves 0.3 s apart
    becomes 16 KiB partials and a tail ending in the newline, which reassemble to the line
    and all carry the first partial's time (moby's rule; stamped per chunk, the second
    partial would be 0.3 s later)."""
    box.ok("run", "--name", "long", "busybox", "sh", "-c",
           "s=$(head -c 20000 /dev/zero | tr '\\0' x); printf %s \"$s\"; sleep 0.3; "
           "printf %s \"$s\"; echo; echo after")
    got = log_of(box, box.inspect("long", "{{.Id}}"))
    assert [len(e.log) for e in got] == [16384, 16384, 40000 - 2 * 16384 + 1, 6]
    assert [e.partial for e in got] == [True, True, False, False]
    assert b"".join(e.log for e in got[:3]) == b"x" * 40000 + b"\n"
    assert got[0].time_ns == got[1].time_ns == got[2].time_ns
    assert got[3].time_ns > got[0].time_ns + 250_000_000  # "after" has its own, later time
    box.ok("rm", "long")


def test_log_lines_are_docker_json_file(box: Box) -> None:
    box.ok("run", "--name", "lg", "busybox", "sh", "-c",
           r'echo out1; echo err1 >&2; printf "tab\there <&> \"q\"\n"; printf "no newline"')
    cid = box.inspect("lg", "{{.Id}}")
    log = box.inspect("lg", "{{.LogPath}}")
    assert log == str(box.root / "containers" / cid / f"{cid}-json.log")
    got = log_of(box, cid)
    by_stream = {s: [e.log for e in got if e.stream == s] for s in ("stdout", "stderr")}
    assert by_stream == {"stdout": [b"out1\n", b'tab\there <&> "q"\n', b"no newline"],
                         "stderr": [b"err1\n"]}
    assert [e.partial for e in got if e.stream == "stdout"] == [False, False, True]
    raw = Path(log).read_bytes()
    assert b'"log":"tab\\u0009here \\u003c\\u0026\\u003e \\"q\\"\\n"' in raw
    times = [e.time_ns for e in got if e.stream == "stdout"]
    assert times == sorted(times)
    assert abs(times[0] - time.time_ns()) < 60 * 10**9


def test_a_long_line_becomes_16k_partials(box: Box) -> None:
    cid = box.ok("run", "-d", "busybox", "sh", "-c",
                 "head -c 40000 /dev/zero | tr '\\0' a; echo; echo next").strip()
    box.ok("wait", cid)
    got = log_of(box, cid)
    assert [len(e.log) for e in got] == [16384, 16384, 40000 - 2 * 16384 + 1, 5]
    assert [e.partial for e in got] == [True, True, False, False]
    assert b"".join(e.log for e in got[:3]) == b"a" * 40000 + b"\n"


def test_rotation_keeps_max_file_files(box: Box) -> None:
    cid = box.ok("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox",
                 "sh", "-c", "for i in $(seq 300); do echo line-$i-xxxxxxxxxxxxxxxxxxxx; done"
                 ).strip()
    box.ok("wait", cid)
    assert log_files(box, cid) == ["-json.log", "-json.log.1", "-json.log.2"]
    cdir = box.root / "containers" / cid
    lines: list[bytes] = []
    for suffix in (".2", ".1", ""):
        path = cdir / f"{cid}-json.log{suffix}"
        assert path.stat().st_size <= 1000 + 100
        lines += [e.log for e in entries(path)]
    numbers = [int(x.split(b"-")[1]) for x in lines]
    assert numbers == list(range(numbers[0], 301)), "contiguous, oldest file first"
    assert numbers[0] > 1
    # box logs reads across the rotated files too
    assert box.ok("logs", cid).splitlines()[-1] == "line-300-xxxxxxxxxxxxxxxxxxxx"


def test_rotation_with_compress(box: Box) -> None:
    cid = box.ok("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
                 "--log-opt", "compress=true", "busybox", "sh", "-c",
                 "for i in $(seq 300); do echo line-$i-xxxxxxxxxxxxxxxxxxxx; done").strip()
    box.ok("wait", cid)
    assert log_files(box, cid) == ["-json.log", "-json.log.1.gz", "-json.log.2.gz"]
    cdir = box.root / "containers" / cid
    lines = []
    for suffix in (".2.gz", ".1.gz", ""):
        lines += [e.log for e in entries(cdir / f"{cid}-json.log{suffix}")]
    numbers = [int(x.split(b"-")[1]) for x in lines]
    assert numbers == list(range(numbers[0], 301))


# -- box logs ---------------------------------------------------------------------------

@pytest.fixture
def three_lines(box: Box) -> tuple[str, list[LogEntry]]:
    cid = box.ok("run", "-d", "busybox", "sh", "-c",
                 "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c").strip()
    box.ok("wait", cid)
    return cid, log_of(box, cid)


def test_logs_all_streams_in_order(box: Box, three_lines) -> None:
    cid, _ = three_lines
    proc = box("logs", cid)
    assert (proc.stdout, proc.stderr) == ("a\nc\n", "b\n")


@pytest.mark.parametrize("tail, out, err", [("1", "c\n", ""), ("2", "c\n", "b\n"),
                                            ("0", "", ""), ("all", "a\nc\n", "b\n")])
def test_logs_tail(box: Box, three_lines, tail: str, out: str, err: str) -> None:
    cid, _ = three_lines
    proc = box("logs", "--tail", tail, cid)
    assert (proc.stdout, proc.stderr) == (out, err)


def test_logs_since_and_until(box: Box, three_lines) -> None:
    cid, got = three_lines
    mid_ab = rfc3339((got[0].time_ns + got[1].time_ns) // 2)
    mid_bc = (got[1].time_ns + got[2].time_ns) // 2
    assert box.ok("logs", "--since", mid_ab, cid) == "c\n"
    assert box("logs", "--since", mid_ab, cid).stderr == "b\n"
    assert box.ok("logs", "--until", mid_ab, cid) == "a\n"
    unix = f"{mid_bc // 10**9}.{mid_bc % 10**9:09d}"
    assert box.ok("logs", "--since", unix, cid) == "c\n"
    assert box("logs", "--since", mid_ab, "--until", unix, cid).stdout == ""
    assert box.ok("logs", "--since", "1h", cid) == "a\nc\n"


def test_logs_timestamps(box: Box, three_lines) -> None:
    cid, got = three_lines
    out = box.ok("logs", "-t", cid).splitlines()
    assert out == [f"{rfc3339(got[0].time_ns)} a", f"{rfc3339(got[2].time_ns)} c"]


def test_logs_follow_ends_when_the_container_exits(box: Box) -> None:
    cid = box.ok("run", "-d", "busybox", "sh", "-c",
                 "echo first; sleep 0.5; echo second; sleep 0.3").strip()
    t0 = time.monotonic()
    proc = subprocess.run([BOX, "logs", "-f", cid], capture_output=True, text=True,
                          env=box.env, timeout=15, stdin=subprocess.DEVNULL)
    assert proc.stdout == "first\nsecond\n"
    assert time.monotonic() - t0 < 5


# -- exec -------------------------------------------------------------------------------

@pytest.fixture
def sleeper(box: Box) -> str:
    return box.ok("run", "-d", "--name", "sleeper", "-e", "FROM_RUN=1", "busybox",
                  "sleep", "60").strip()


@pytest.mark.parametrize("argv, code", [(("true",), 0), (("sh", "-c", "exit 4"), 4),
                                        (("/etc/passwd",), 126), (("nothere",), 127)])
def test_exec_exit_codes(box: Box, sleeper: str, argv: tuple[str, ...], code: int) -> None:
    assert box("exec", sleeper, *argv).returncode == code


def test_exec_env_user_workdir(box: Box, sleeper: str) -> None:
    out = box.ok("exec", "-e", "FOO=bar", "-u", "app", "-w", "/tmp/work", sleeper, "sh", "-c",
                 "echo $FOO $FROM_RUN; id -u; pwd")
    assert out.split() == ["bar", "1", "1000", "/tmp/work"]


def test_exec_joins_the_containers_cgroup_and_namespaces(box: Box, sleeper: str) -> None:
    out = box.ok("exec", sleeper, "sh", "-c", "cat /proc/self/cgroup; ps -o pid,args; hostname")
    assert f"memory:/box/{sleeper}" in out
    assert re.search(r"^\s*1 sleep 60$", out, re.M), out
    assert out.splitlines()[-1] == sleeper[:12]


def test_exec_stdin_and_tty(box: Box, sleeper: str) -> None:
    assert box("exec", "-i", sleeper, "cat", input=b"piped").stdout == "piped"
    assert box("exec", "-t", sleeper, "sh", "-c", "[ -t 1 ]").returncode == 0
    assert box("exec", sleeper, "sh", "-c", "[ -t 1 ]").returncode == 1


def test_exec_into_a_stopped_container_fails(box: Box) -> None:
    box.ok("run", "--name", "stopped", "busybox", "true")
    proc = box("exec", "stopped", "true")
    assert proc.returncode != 0
    assert "is not running" in proc.stderr


# -- cp ---------------------------------------------------------------------------------

@pytest.mark.parametrize("running", [True, False])
def test_cp_files_and_dirs_both_ways(box: Box, tmp_path: Path, running: bool) -> None:
    cid = box.ok("run", "-d", "busybox", "sleep", "60").strip()
    if not running:
        box.ok("stop", "-t", "0", cid)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "y.txt").write_text("deep\n")
    (tmp_path / "f.txt").write_text("hostdata\n")
    box.ok("cp", str(tmp_path / "f.txt"), f"{cid}:/tmp/")
    box.ok("cp", str(tmp_path / "f.txt"), f"{cid}:/tmp/renamed.txt")
    box.ok("cp", str(src), f"{cid}:/tmp/dir")
    out = tmp_path / "out"
    out.mkdir()
    box.ok("cp", f"{cid}:/tmp/f.txt", str(out / "f.txt"))
    box.ok("cp", f"{cid}:/tmp/renamed.txt", str(out))
    box.ok("cp", f"{cid}:/tmp/dir", str(out / "dir"))
    box.ok("cp", f"{cid}:/etc/passwd", str(out))
    assert (out / "f.txt").read_text() == "hostdata\n"
    assert (out / "renamed.txt").read_text() == "hostdata\n"
    assert (out / "dir" / "sub" / "y.txt").read_text() == "deep\n"
    assert (out / "passwd").read_text().startswith("root:x:0:0:")
    if running:
        assert box.ok("exec", cid, "cat", "/tmp/dir/sub/y.txt") == "deep\n"
    else:
        box.ok("start", cid)
        assert box.ok("exec", cid, "cat", "/tmp/dir/sub/y.txt", "/tmp/f.txt") == \
            "deep\nhostdata\n"
    # nothing of the copy is left beside the destination
    assert sorted(p.name for p in out.iterdir()) == ["dir", "f.txt", "passwd", "renamed.txt"]


def test_cp_of_a_missing_path(box: Box, tmp_path: Path) -> None:
    cid = box.ok("run", "-d", "busybox", "sleep", "60").strip()
    proc = box("cp", f"{cid}:/no/such", str(tmp_path / "x"))
    assert proc.returncode == 1
    assert "/no/such" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    proc = box("cp", str(tmp_path / "missing"), f"{cid}:/tmp/")
    assert proc.returncode == 1


@pytest.mark.parametrize("running", [True, False])
@pytest.mark.parametrize("link_target, host_dir", [("/", "/"), ("/etc", "/etc"),
                                                    ("../../../../../../tmp", "/tmp")])
def test_cp_never_follows_a_container_symlink_onto_the_host(
        box: Box, tmp_path: Path, running: bool, link_target: str, host_dir: str) -> None:
    """CVE-2018-15664: /tmp/link -> / inside the container must resolve inside it."""
    cid = box.ok("run", "-d", "busybox", "sleep", "60").strip()
    box.ok("exec", cid, "ln", "-s", link_target, "/tmp/link")
    if not running:
        box.ok("stop", "-t", "0", cid)
    name = f"box-cve-{cid[:12]}"
    (tmp_path / "evil").write_text("evil\n")
    try:
        box("cp", str(tmp_path / "evil"), f"{cid}:/tmp/link/{name}")
        assert not Path(host_dir, name).exists(), "written on the host"
        # out of the container through the link: the container's file, not the host's
        proc = box("cp", f"{cid}:/tmp/link/{name}", str(tmp_path / "back"))
        if proc.returncode == 0:
            assert (tmp_path / "back").read_text() == "evil\n"
    finally:
        Path(host_dir, name).unlink(missing_ok=True)
    if not running:
        box.ok("start", cid)
    inside = {"/": "/", "/etc": "/etc", "../../../../../../tmp": "/tmp"}[link_target]
    assert box.ok("exec", cid, "cat", f"{inside.rstrip('/')}/{name}") == "evil\n"


def test_cp_out_of_a_symlink_reads_the_containers_file(box: Box, tmp_path: Path) -> None:
    cid = box.ok("run", "-d", "busybox", "sh", "-c",
                 "echo container-secret > /etc/mine; ln -s /etc /tmp/etc; sleep 60").strip()
    time.sleep(0.2)
    box.ok("cp", f"{cid}:/tmp/etc/hostname", str(tmp_path / "hn"))
    assert (tmp_path / "hn").read_text() == cid[:12] + "\n"
    box.ok("cp", f"{cid}:/tmp/etc/mine", str(tmp_path / "mine"))
    assert (tmp_path / "mine").read_text() == "container-secret\n"


def test_cp_ownership_follows_docker_unless_archive(box: Box, tmp_path: Path) -> None:
    """Without -a a copy belongs to the destination's user (root in the container, the
    caller on the host); with -a it keeps the source's uid/gid."""
    import os

    cid = box.ok("run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    src = tmp_path / "own.txt"
    src.write_text("x\n")
    os.chown(src, 1234, 1234)
    box.ok("cp", str(src), f"{cid}:/tmp/plain")
    box.ok("cp", "-a", str(src), f"{cid}:/tmp/kept")
    owners = box.ok("exec", cid, "stat", "-c", "%n %u:%g", "/tmp/plain", "/tmp/kept")
    assert owners.split("\n")[:2] == ["/tmp/plain 0:0", "/tmp/kept 1234:1234"]
    box.ok("exec", cid, "chown", "77:77", "/tmp/kept")
    box.ok("cp", f"{cid}:/tmp/kept", str(tmp_path / "out-plain"))
    box.ok("cp", "-a", f"{cid}:/tmp/kept", str(tmp_path / "out-kept"))
    plain, kept = os.lstat(tmp_path / "out-plain"), os.lstat(tmp_path / "out-kept")
    assert (plain.st_uid, plain.st_gid) == (os.getuid(), os.getgid())
    assert (kept.st_uid, kept.st_gid) == (77, 77)


def test_logs_details_prefixes_the_attributes_field(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "echo", "hi").strip()
    box.ok("wait", cid)
    assert box.ok("logs", cid) == "hi\n"
    assert box.ok("logs", "--details", cid) == " hi\n"  # no attrs: docker's empty prefix
