"""The exec console: a WebSocket bridged to ``box exec -it CONTAINER sh`` on a pty.

Messages from the page are JSON text: ``{"type": "input", "data": "..."}`` and
``{"type": "resize", "cols": C, "rows": R}``; output goes back as binary frames. The
process starts only after the first resize, on a pty already that size, so the shell's
first prompt is drawn for the real pane; later resizes set the pty's size, the kernel
signals ``box exec`` (the pty is its controlling terminal: ``setsid --ctty``) and box
passes the size on to the container's own pty. The page going away closes the socket,
which hangs up the pty and ends the process."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import orjson
from aiohttp import WSMsgType, web

from boxwatch.web.auth import same_origin
from boxwatch.web.tail import find_local

FIRST_RESIZE_TIMEOUT = 10.0


def box_binary() -> str:
    """The ``box`` next to this interpreter (the venv's), else the one on PATH."""
    near = Path(sys.executable).parent / "box"
    return str(near) if near.exists() else (shutil.which("box") or "box")


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _size(msg: dict) -> tuple[int, int] | None:
    rows, cols = msg.get("rows"), msg.get("cols")
    if isinstance(rows, int) and isinstance(cols, int) and 0 < rows < 1000 and 0 < cols < 1000:
        return rows, cols
    return None


class Console:
    def __init__(self, roots: list[str], shell: str = "sh") -> None:
        self.roots = roots
        self.shell = shell

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return web.Response(status=403, text="403 cross-origin WebSocket refused\n")
        key = request.match_info["name"]
        local = find_local(self.roots, key)
        if local is None:
            return web.Response(status=404, text=f"no such container on this host: {key}\n")
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        first = await self._first_size(ws)
        if first is None:
            await ws.close()
            return ws
        master, slave = os.openpty()
        set_size(master, *first)
        env = {**os.environ, "BOX_ROOT": local.root, "TERM": "xterm-256color"}
        proc = subprocess.Popen(
            ["setsid", "--ctty", box_binary(), "exec", "-it", local.id, self.shell],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        try:
            await self._relay(ws, master)
        finally:
            os.close(master)  # hangs up the pty: the shell gets SIGHUP
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP)
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 5)
            except TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)
            await ws.close()
        return ws

    async def _first_size(self, ws: web.WebSocketResponse) -> tuple[int, int] | None:
        try:
            async with asyncio.timeout(FIRST_RESIZE_TIMEOUT):
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        return None
                    data = orjson.loads(msg.data)
                    if isinstance(data, dict) and data.get("type") == "resize":
                        return _size(data)
        except (TimeoutError, orjson.JSONDecodeError):
            return None
        return None

    async def _relay(self, ws: web.WebSocketResponse, master: int) -> None:
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            output.put_nowait(data)
            if not data:
                loop.remove_reader(master)

        loop.add_reader(master, readable)

        async def pump_out() -> None:
            while data := await output.get():
                await ws.send_bytes(data)

        sender = loop.create_task(pump_out())
        sender.add_done_callback(lambda _: loop.create_task(ws.close()))  # the shell ended
        try:
            async for msg in ws:
                if sender.done() or msg.type != WSMsgType.TEXT:
                    break
                try:
                    data = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                if data.get("type") == "input" and isinstance(data.get("data"), str):
                    os.write(master, data["data"].encode())
                elif data.get("type") == "resize" and (size := _size(data)):
                    set_size(master, *size)
        finally:
            loop.remove_reader(master)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
