"""Attack (denial of service): a container that fills the disk holding its json-file
log made the monitor's write raise ENOSPC, which ended the monitor and took the container
down with it. Like dockerd, the writer now drops (and counts) what does not fit and the
container keeps running."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import Box


def test_a_full_log_disk_does_not_kill_the_container(box: Box) -> None:
    cid = box.ok("create", "--network", "none", "busybox", "sh", "-c",
                 "yes 0123456789abcdef | head -c 400000; echo still-here; sleep 60").strip()
    cdir = box.root / "containers" / cid
    saved = Path(tempfile.mkdtemp(prefix="logfull-"))
    shutil.copytree(cdir, saved / "c")
    # 96 KiB: the state files fit, the log does not.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "box-logfull", str(cdir)],
                   check=True)
    try:
        for f in (saved / "c").iterdir():
            shutil.copy2(f, cdir / f.name)
        box.ok("start", cid)
        log = cdir / f"{cid}-json.log"
        sleeping = ["exec", cid, "sh", "-c", "cat /proc/[0-9]*/comm | grep -qx sleep"]
        deadline = time.monotonic() + 30
        while box(*sleeping).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)  # the output (more than the disk holds) is still being written
        assert box(*sleeping).returncode == 0, "the container died with its log disk full"
        assert box.inspect(cid, "{{.State.Running}}") == "true"
        assert log.stat().st_size < 96 * 1024
        # every line that made it into the log is whole
        for line in log.read_bytes().splitlines():
            assert line.startswith(b'{"log":') and line.endswith(b"}"), line[-80:]
        log.write_bytes(b"")  # the admin frees space; the monitor reports what it dropped
        box.ok("stop", "-t", "1", cid, timeout=60)
        monitor_log = box.exec_root / "containers" / cid / "monitor.log"
        assert "lines dropped" in monitor_log.read_text()
    finally:
        box("stop", "-t", "1", cid, timeout=60)
        subprocess.run(["umount", "-l", str(cdir)], check=False)
        box("rm", "-f", cid, timeout=60)
        shutil.rmtree(saved, ignore_errors=True)
