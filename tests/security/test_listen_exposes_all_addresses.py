"""Attack: an admin who wrote ``--listen :9180`` for the collector, as for the shipper,
meant "the default address, this port". The shipper read it as loopback, the collector
as every address: /metrics (container names, labels, images) open to the network. One
parser (formats/listen.py) now reads it for every server: an empty host is loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.prometheus import free_port

REPO = Path(__file__).resolve().parents[2]
BOXWATCH = str(Path(sys.executable).parent / "boxwatch")


def _listening_on(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, _, hexport = local.partition(":")
        if state == "0A" and int(hexport, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def _bound_address(argv: list[str], port: int, log: Path) -> set[str]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (found := _listening_on(port)):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return found
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _argv(program: str, tmp_path: Path, listen: str) -> list[str]:
    (tmp_path / "root").mkdir()
    if program == "collector":
        return [BOXWATCH, "collector", "--root", str(tmp_path / "root"), "--interval", "1s",
                "--listen", listen]
    return [sys.executable, "-m", "shipper.cli", "--root", str(tmp_path / "root"),
            "--sink", f"file={tmp_path / 'out.jsonl'}", "--registry",
            str(tmp_path / "reg.json"), "--listen", listen]


@pytest.mark.parametrize("program", ["collector", "shipper"])
@pytest.mark.parametrize(("host", "bound"), [("", "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_all_addresses_only_when_named(program: str, host: str, bound: str,
                                       tmp_path: Path) -> None:
    # `:PORT` is loopback for both (the collector's used to bind every address)
    port = free_port()
    argv = _argv(program, tmp_path, f"{host}:{port}")
    assert _bound_address(argv, port, tmp_path / "log") == {bound}


@pytest.mark.parametrize("value", ["9180", "host:", ":99999", "::1:80", "[::1:80"])
def test_a_bad_listen_is_one_line_for_both(value: str, tmp_path: Path) -> None:
    for argv in ([BOXWATCH, "collector", "--root", str(tmp_path), "--listen", value],
                 [sys.executable, "-m", "shipper.cli", "--root", str(tmp_path), "--sink",
                  "file=-", "--registry", str(tmp_path / "reg.json"), "--listen", value]):
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and repr(value) in lines[0] and "HOST:PORT" in lines[0], lines
