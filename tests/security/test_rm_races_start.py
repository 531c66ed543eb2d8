"""Attack (a race): ``box rm`` looked at "running" before taking the container's lock,
then deleted under it. A ``box start`` in between launched a monitor, and rm deleted the
state, overlay and cgroup of a container that was starting: a process left running with
no record, no cleanup, its cgroup gone. rm now decides again under the lock.

The race is made, not hoped for: a helper takes the container's lock, ``box rm`` is
started and seen waiting for it (/proc/locks), and the helper runs start's own locked
step (``Containers.launch_locked``) before letting go."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import BOX, Box

REPO = Path(__file__).resolve().parents[2]

# Start's locked step, with the lock taken first and held until the test says go.
HELPER = """
import sys
from runtime.containers import Containers, StatusReader
from runtime.paths import Paths
c = Containers(Paths.from_env())
cid = sys.argv[1]
with c.store.lock(cid):
    print("locked", flush=True)
    sys.stdin.readline()
    cfg, launched = c.launch_locked(cid)
print(StatusReader(launched[1]).next()[0], flush=True)
"""


def _waiting_for_lock(pid: int) -> bool:
    """``pid`` blocked on a flock (a "->" line of /proc/locks)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[fields.index("->") + 4] == str(pid):
            return True
    return False


def _race(box: Box, *rm_flags: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    cid = box.ok("create", "--network", "none", "busybox", "sleep", "300").strip()
    helper = subprocess.Popen([sys.executable, "-c", HELPER, cid], cwd=REPO, env=box.env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout.readline().strip() == "locked"
        rm = subprocess.Popen([BOX, "rm", *rm_flags, cid], env=box.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _waiting_for_lock(rm.pid):
            assert rm.poll() is None, rm.communicate()
            assert time.monotonic() < deadline, "box rm never waited for the lock"
            time.sleep(0.01)
        helper.stdin.write("go\n")
        helper.stdin.flush()
        out, err = rm.communicate(timeout=90)
        # Whatever rm did, the monitor the helper launched had its state to start from.
        assert helper.stdout.readline().strip() == "started", (rm.returncode, err)
    finally:
        helper.kill()
        helper.wait()
    return cid, subprocess.CompletedProcess(rm.args, rm.returncode, out, err)


def test_rm_refuses_a_container_started_while_it_waited(box: Box) -> None:
    cid, rm = _race(box)
    assert rm.returncode == 1, (rm.stdout, rm.stderr)
    assert rm.stderr.strip() == (f"box: You cannot remove a running container {cid}. Stop "
                                 "the container before attempting removal or force remove")
    assert box.inspect(cid, "{{.State.Running}}") == "true"
    assert box.ok("exec", cid, "echo", "alive").strip() == "alive"


def test_rm_force_removes_a_container_started_while_it_waited(box: Box) -> None:
    cid, rm = _race(box, "-f")
    assert rm.returncode == 0, rm.stderr
    assert box("inspect", cid).returncode == 1  # its cgroup gone too: the leak check
    assert not (box.root / "containers" / cid).exists()
