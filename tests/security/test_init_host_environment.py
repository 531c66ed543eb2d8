"""Attack: with ``--init`` the container's PID 1 is the forked host Python, so
``/proc/1/environ`` inside showed the environment of whoever ran ``box run`` (tokens,
credentials). PID 1 is now non-dumpable with its environment zeroed."""

from __future__ import annotations

import subprocess
import uuid

from tests.conftest import BOX, Box


def test_init_pid1_shows_nothing_of_the_hosts_environment(box: Box) -> None:
    secret = f"host-secret-{uuid.uuid4().hex}"
    env = {**box.env, "BOX_TEST_ADMIN_TOKEN": secret}
    # The command reads it at once: PID 1 must have hidden it before the command ran
    # (it once did so after forking, and a busy machine let `cat` win the race).
    for _ in range(5):
        proc = subprocess.run([BOX, "run", "--rm", "--init", "--network", "none", "busybox",
                               "cat", "/proc/1/environ"],
                              env=env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        # non-dumpable from before the command ran: unreadable, or zeroed if read
        assert proc.returncode == 0 or "Permission denied" in proc.stderr, proc.stderr
        assert secret not in proc.stdout
        assert "BOX_TEST_ADMIN_TOKEN" not in proc.stdout


def test_init_still_forwards_signals_and_reaps(box: Box) -> None:
    cid = box.ok("run", "-d", "--init", "--network", "none", "busybox", "sleep", "60").strip()
    box.ok("stop", "-t", "5", cid)
    assert box.inspect(cid, "{{.State.ExitCode}}") in ("143", "0")
