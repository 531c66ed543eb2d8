"""``box top``: the container's processes as ``ps -ef`` shows them, read from /proc."""

from __future__ import annotations

import os
import pwd
import time

_CLK_TCK = os.sysconf("SC_CLK_TCK")
HEADERS = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_rows(pids: list[int], proc: str = "/proc") -> tuple[list[str], list[list[str]]]:
    """Rows for the pids that still exist; a process gone mid-read is skipped."""
    boot = _boot_time()
    now = time.time()
    rows = []
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            uid = os.stat(f"{proc}/{pid}").st_uid
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        ppid = int(fields[1])
        tty_nr = int(fields[4])
        cpu_ticks = int(fields[11]) + int(fields[12])
        start = boot + int(fields[19]) / _CLK_TCK
        elapsed = max(now - start, 1e-9)
        c = int(100 * cpu_ticks / _CLK_TCK / elapsed)
        stime = time.strftime("%H:%M", time.localtime(start))
        secs = cpu_ticks // _CLK_TCK
        cpu_time = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        tty = "?" if tty_nr == 0 else f"pts/{os.minor(tty_nr)}"
        cmd = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        if not cmd:
            cmd = "[" + stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace") + "]"
        rows.append([_user(uid), str(pid), str(ppid), str(c), stime, tty, cpu_time, cmd])
    return HEADERS, rows
