"""What `box run` does early to start faster (issue 14c): the monitor forked before the
container exists (runtime.prelaunch), the cgroup-migration warmer, patterns compiled at
first use (formats.lazyre). Each must leave nothing behind and change no behaviour."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from formats.lazyre import LazyPattern, lazy_compile
from runtime.cgroups import warm_migration_lock
from runtime.paths import Paths
from runtime.prelaunch import EarlyMonitor
from tests.conftest import Box


def _processes_with_root(root: Path) -> list[int]:
    """Live processes whose environment names this root (a `box` of this test)."""
    needle = f"BOX_ROOT={root}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read() + b"\0"
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if needle in env and state != "Z":
            found.append(int(entry))
    return found


def test_a_failed_create_leaves_no_early_monitor(box: Box) -> None:
    """The monitor forked before create() ends with the command when create fails."""
    proc = box("run", "--rm", "--network", "none", "no-such-image-14c", "true")
    assert proc.returncode == 125, proc.stderr
    assert "Unable to find image" in proc.stderr and "Traceback" not in proc.stderr
    assert _processes_with_root(box.root) == []


def test_the_early_monitor_is_the_recorded_monitor(box: Box) -> None:
    """-d: the early process becomes the monitor recorded in the state, and runs the
    container to its end (its exit code lands in the state)."""
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "sleep 0.3; exit 7").strip()
    deadline = time.monotonic() + 20
    while box.inspect(cid, "{{.State.Status}}") != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.inspect(cid, "{{.State.ExitCode}}") == "7"
    box.ok("rm", cid)
    deadline = time.monotonic() + 5
    while _processes_with_root(box.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with_root(box.root) == []


def test_early_monitor_cancel_ends_the_child(tmp_path: Path) -> None:
    early = EarlyMonitor(Paths(str(tmp_path / "root"), str(tmp_path / "run")), True, False)
    pid = early.pid
    early.cancel()
    early.cancel()  # twice: a no-op
    assert not os.path.exists(f"/proc/{pid}") or _zombie_or_gone(pid)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_warmer_keeps_writing_until_stopped() -> None:
    """The warmer lives until told (it keeps the grace period passed), then is reaped."""
    warmer = warm_migration_lock()
    time.sleep(0.05)
    assert os.path.exists(f"/proc/{warmer.pid}") and not _zombie_or_gone(warmer.pid)
    warmer.stop()
    warmer.stop()
    assert not os.path.exists(f"/proc/{warmer.pid}")


def test_lazy_pattern_behaves_as_the_compiled_one() -> None:
    lazy = lazy_compile(r"([0-9]+) ?([kmg])?b?", re.IGNORECASE)
    eager = re.compile(r"([0-9]+) ?([kmg])?b?", re.IGNORECASE)
    assert isinstance(lazy, LazyPattern) and "match" not in vars(lazy)  # nothing compiled yet
    for text in ("12", "3 KB", "x", "5g"):
        lm, em = lazy.fullmatch(text), eager.fullmatch(text)
        assert (lm and lm.groups()) == (em and em.groups())
    assert lazy.sub("n", "1k 2m") == eager.sub("n", "1k 2m")
    assert lazy.pattern == eager.pattern and lazy.flags == eager.flags


def test_plain_image_names_skip_the_pattern_with_the_same_verdict() -> None:
    from runtime.images import reference

    names = ["busybox", "a", "0", "alpine3", "Busybox", "a_b", "a__b", "a--b", "-a", "a.",
             "", "library/x", "x:5000/y", "my.reg/a/b-c", "a b", "ä", "a/B"]
    for name in names:
        assert reference._valid_name(name) == bool(reference._NAME_RE.match(name)), name
    assert reference.parse_ref("busybox") == ("busybox", "latest")
