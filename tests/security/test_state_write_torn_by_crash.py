"""Attack (of chance): a power cut right after ``box`` rewrote a state file. The writers
renamed a temp file over the target without fsync, so ext4 could journal the rename
before the data: after the crash ``config.v2.json`` (or the shipper's offset registry,
the stack's credentials) is empty and the container is lost. Every atomic write now goes
through formats.atomicfile: fsync(temp) < rename < fsync(directory), checked here with
strace on the real programs, and by a scan that finds no other rename-over-a-temp-file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BOX, Box

REPO = Path(__file__).resolve().parents[2]
# Renames of whole directories (a layer extracted beside its final place), not file writes.
DIRECTORY_RENAMES = {"runtime/images/extract.py"}
_CALL = re.compile(r"^(?:\[pid\s+\d+\]\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)")


def _strace(cmd: list[str], env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(syscall, arguments with fds shown as their paths) of ``cmd`` and its children."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (scripts/bootstrap installs it)")
    proc = subprocess.run(["strace", "-f", "-qq", "-y", "-e",
                           "trace=fsync,fdatasync,rename,renameat,renameat2", *cmd],
                          capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = []
    for line in proc.stderr.splitlines():
        m = _CALL.match(line)
        if m and m.group(3) == "0":
            calls.append((m.group(1), m.group(2)))
    return calls


def _renames(calls: list[tuple[str, str]], target: str) -> list[int]:
    found = [i for i, (name, args) in enumerate(calls)
             if name.startswith("rename") and args.rstrip().endswith(f'{target}"')]
    assert found, f"no rename onto {target}: {calls}"
    return found


def _assert_never_torn(calls: list[tuple[str, str]], target: str, i: int) -> None:
    """The temp file renamed onto ``target`` at ``calls[i]`` was fsync'd before."""
    tmp = re.search(r'"([^"]+)"', calls[i][1]).group(1)
    tmp_name = tmp.rsplit("/", 1)[-1]
    synced = [j for j, (name, args) in enumerate(calls[:i])
              if name in ("fsync", "fdatasync") and f"{tmp_name}>" in args]
    assert synced, f"{tmp} renamed over {target} without an fsync first: {calls[:i + 1]}"


def _assert_durable(calls: list[tuple[str, str]], target: str) -> None:
    """The last write of ``target``: its temp file fsync'd, renamed over it, its directory
    fsync'd, in that order."""
    i = _renames(calls, target)[-1]
    _assert_never_torn(calls, target, i)
    directory = target.rsplit("/", 1)[0]
    dir_synced = [j for j, (name, args) in enumerate(calls[i + 1:])
                  if name == "fsync" and args.endswith(f"<{directory}>")]
    assert dir_synced, f"{directory} not fsync'd after the rename: {calls[i:]}"


def test_state_files_survive_a_crash_after_box_create(box: Box) -> None:
    calls = _strace([BOX, "create", "--network", "none", "--name", "durable", "busybox",
                     "true"], env=box.env)
    cid = box.inspect("durable", "{{.Id}}")
    cdir = str(box.root.resolve() / "containers" / cid)
    _assert_durable(calls, f"{cdir}/config.v2.json")
    _assert_durable(calls, f"{cdir}/hostconfig.json")


def test_every_state_write_of_box_run_is_never_torn(box: Box) -> None:
    """The writes that record what a reboot ends (the monitor's pid, the cgroup paths, the
    running process) skip the directory fsync; their temp files are still fsync'd, so a
    crash leaves the previous version or the new one, never an empty file."""
    calls = _strace([BOX, "run", "--name", "torn", "--network", "none", "busybox", "true"],
                    env=box.env)
    cid = box.inspect("torn", "{{.Id}}")
    target = f"{box.root.resolve()}/containers/{cid}/config.v2.json"
    writes = _renames(calls, target)
    assert len(writes) >= 4, calls  # create, start, cgroup paths, running, exited
    for i in writes:
        _assert_never_torn(calls, target, i)
    _assert_durable(calls, target)  # the last one, "exited", is durable
    assert box.inspect("torn", "{{.State.Status}}") == "exited"


def test_shipper_registry_and_stack_writes_are_durable(tmp_path: Path) -> None:
    script = ("import sys; from shipper.sources.checkpoint import write_atomic;"
              "from boxwatch.stack.procs import write_pidfile; from pathlib import Path;"
              "write_atomic(sys.argv[1], b'{}'); write_pidfile(Path(sys.argv[2]), 1)")
    reg, pidfile = tmp_path / "registry.json", tmp_path / "influxd.pid"
    calls = _strace([sys.executable, "-c", script, str(reg), str(pidfile)])
    _assert_durable(calls, str(reg))
    _assert_durable(calls, str(pidfile))
    assert reg.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["influxd.pid", "registry.json"]


def test_no_other_copy_of_the_atomic_write() -> None:
    """A module that renames a ``*.tmp`` file over another is a second, unsynced copy."""
    offenders = []
    for pkg in ("formats", "cgroupstats", "runtime", "collector", "shipper", "boxwatch"):
        for path in (REPO / pkg).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            if rel == "formats/atomicfile.py" or rel in DIRECTORY_RENAMES:
                continue
            text = path.read_text()
            if re.search(r"\.tmp\b", text) and re.search(r"os\.(replace|rename)\(|"
                                                         r"\.(replace|rename)\(\w*tmp", text):
                offenders.append(rel)
    assert not offenders, offenders
