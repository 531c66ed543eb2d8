"""Networking costs: the extra start latency of ``--network bridge`` over ``--network none``
(``box run --rm IMAGE true``, interleaved), and TCP throughput into a container through a
published port (``127.0.0.1:PORT``: nftables DNAT + masquerade) against straight to the
container's address, 1 GiB each by default, over loopback/veth only.

The server runs in the container: by default the host's python through a read-only bind
of ``/`` and ``chroot`` (busybox has no fast sink: ``nc -l > /dev/null`` copies in 1 KiB
reads, see ``--server nc``). The client sends, half-closes, and stops the clock when the
server has read everything (its reply or EOF).

Prints one JSON object. Targets (issue 5): extra p50 <= 40 ms; published >= 90% of direct.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.busybox import build_busybox_tar

BOX = str(Path(sys.executable).parent / "box")
SINK = ("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',9000))\ns.listen(4)\nb=bytearray(1<<20)\nwhile True:\n"
        " c,_=s.accept()\n while c.recv_into(b):\n  pass\n c.sendall(b'k')\n c.close()\n")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _free_subnet() -> str:
    from runtime.network.bridge import Bridges

    for third in range(100, 240):
        cand = f"172.31.{third}.0/24"
        if Bridges().overlapping_route(cand) is None:
            return cand
    raise SystemExit("no free /24 in 172.31.0.0/16")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _box(env: dict[str, str], *args: str) -> str:
    return subprocess.run([BOX, *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def start_latency(env: dict[str, str], runs: int) -> dict[str, float]:
    none = [BOX, "run", "--rm", "--network", "none", "busybox", "true"]
    bridge = [BOX, "run", "--rm", "--network", "bridge", "busybox", "true"]
    for _ in range(3):
        _time(none, env)
        _time(bridge, env)
    a, b = [], []
    for _ in range(runs):
        a.append(_time(none, env))
        b.append(_time(bridge, env))
    return {"none_p50_ms": round(statistics.median(a), 2),
            "bridge_p50_ms": round(statistics.median(b), 2),
            "bridge_p95_ms": round(_pct(b, 0.95), 2),
            "extra_p50_ms": round(statistics.median(b) - statistics.median(a), 2)}


def _send(addr: tuple[str, int], total: int, chunk: int = 1 << 20) -> float:
    """Seconds to deliver ``total`` bytes (until the server has read them all)."""
    buf = b"\0" * chunk
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection(addr, timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with s:
        s.settimeout(120)
        t0 = time.perf_counter()
        sent = 0
        while sent < total:
            s.sendall(buf)
            sent += chunk
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # b"k" (python sink) or EOF (nc)
        return time.perf_counter() - t0


def throughput(env: dict[str, str], total: int, repeat: int, server: str) -> dict[str, float]:
    port = _free_port()
    if server == "python":
        cmd = ["-v", "/:/host:ro", "busybox", "chroot", "/host", "python3", "-c", SINK]
    else:
        cmd = ["busybox", "sh", "-c", "while true; do nc -l -p 9000 > /dev/null; done"]
    cid = _box(
        env, "run", "-d", "--network", "bridge", "-p", f"127.0.0.1:{port}:9000", *cmd
    ).strip()
    try:
        ip = _box(env, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).strip()
        _send((ip, 9000), 1 << 20)  # warm up, and wait for the server
        direct, published = [], []
        for _ in range(repeat):
            direct.append(total / _send((ip, 9000), total))
            published.append(total / _send(("127.0.0.1", port), total))
    finally:
        _box(env, "rm", "-f", cid)
    d, p = statistics.median(direct), statistics.median(published)
    return {"server": server, "bytes": total, "repeat": repeat,
            "direct_MiB_s": round(d / 2**20, 1), "published_MiB_s": round(p / 2**20, 1),
            "published_vs_direct": round(p / d, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--server", choices=["python", "nc"], default="python")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOX_ROOT": f"{tmp}/root", "BOX_EXEC_ROOT": f"{tmp}/run",
               "BOX_BRIDGE": f"box-b{os.getpid() % 100000}", "BOX_DEFAULT_SUBNET": _free_subnet()}
        build_busybox_tar(Path(tmp) / "busybox.tar")
        _box(env, "import", f"{tmp}/busybox.tar", "busybox")
        try:
            result = {"bench": "network", "runs": args.runs, **start_latency(env, args.runs),
                      **throughput(env, args.bytes, args.repeat, args.server)}
        finally:
            ids = _box(env, "ps", "-aq", "--no-trunc").split()
            if ids:
                _box(env, "rm", "-f", *ids)
            from runtime.network.teardown import teardown_root
            from runtime.paths import Paths

            teardown_root(Paths(f"{tmp}/root", f"{tmp}/run"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
