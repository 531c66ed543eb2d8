"""cAdvisor's ``process``, ``tcp`` and ``udp`` groups, read from ``/proc``.

process: the group's processes (``cgroup.procs``), their open descriptors and how many
of them are sockets (one ``readlink`` per descriptor, as cAdvisor counts), and the init
process's soft ``Max open files`` (cAdvisor's only ulimit, ``max_open_files``).

tcp/udp: sockets by state from ``/proc/<pid>/net/{tcp,tcp6,udp,udp6}`` of a process
inside the container, so the container's network namespace is the one read (what
cAdvisor reads). tcp states are cAdvisor's label values; udp counts ``listen`` (state
07), ``dropped`` (the drops column summed), ``rxqueued``/``txqueued`` (queue bytes
summed), as cAdvisor's udp reader does.
"""

from __future__ import annotations

import os

from cgroupstats.model import ProcessStats

# /proc/net/tcp's "st" column (include/net/tcp_states.h) -> cAdvisor's tcp_state label
TCP_STATES = {
    "01": "established", "02": "synsent", "03": "synrecv", "04": "finwait1",
    "05": "finwait2", "06": "timewait", "07": "close", "08": "closewait",
    "09": "lastack", "0A": "listen", "0B": "closing",
}
UDP_KEYS = ("listen", "dropped", "rxqueued", "txqueued")


def count_tcp(text: bytes) -> dict[str, int]:
    """Sockets per cAdvisor tcp_state (every state present, 0 when none)."""
    out = dict.fromkeys(TCP_STATES.values(), 0)
    for line in text.split(b"\n")[1:]:
        words = line.split()
        if len(words) > 3:
            state = TCP_STATES.get(words[3].decode())
            if state is not None:
                out[state] += 1
    return out


def count_udp(text: bytes) -> dict[str, int]:
    """cAdvisor's udp_state values: listen sockets, drops, rx/tx queue bytes."""
    out = dict.fromkeys(UDP_KEYS, 0)
    for line in text.split(b"\n")[1:]:
        words = line.split()
        if len(words) < 13:
            continue
        if words[3] == b"07":
            out["listen"] += 1
        tx, _, rx = words[4].partition(b":")
        out["txqueued"] += int(tx, 16)
        out["rxqueued"] += int(rx, 16)
        out["dropped"] += int(words[12])
    return out


def read_net(proc_root: str, pid: int, name: str) -> bytes | None:
    """``/proc/<pid>/net/<name>``; None when the process or the file is gone."""
    try:
        with open(f"{proc_root}/{pid}/net/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def max_open_files(proc_root: str, pid: int) -> int:
    """The soft RLIMIT_NOFILE of ``pid`` (-1 for unlimited or unknown)."""
    try:
        with open(f"{proc_root}/{pid}/limits", "rb") as f:
            for line in f:
                if line.startswith(b"Max open files"):
                    soft = line[26:].split()[0]
                    return -1 if soft == b"unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        pass
    return -1


def process_stats(procs: bytes, proc_root: str, init_pid: int) -> ProcessStats:
    """From a ``cgroup.procs`` content: processes, descriptors, sockets, nofile soft."""
    pids = procs.split()
    fds = sockets = 0
    readlink = os.readlink
    for pid in pids:
        base = f"{proc_root}/{pid.decode()}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            continue  # exited meanwhile
        fds += len(names)
        for name in names:
            try:
                if readlink(f"{base}/{name}").startswith("socket:"):
                    sockets += 1
            except OSError:
                continue
    return ProcessStats(len(pids), fds, sockets, max_open_files(proc_root, init_pid))
