"""An aiohttp app on ``127.0.0.1:<free port>`` in a background thread, for contract
servers the code under test talks to over real HTTP (``with Server() as s: s.url``).

A subclass names itself (``name``, for the thread and errors), sets ``max_body`` and adds
its handlers in ``routes``; starting, stopping and finding the port are done here once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web


class ThreadedApp:
    """The lifecycle shared by the contract servers; handlers run on the server's loop."""

    name = "server"
    max_body = 64 * 1024 * 1024  # client_max_size: the largest request body accepted

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        """Add the handlers."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True,
                                        name=f"contract-{self.name.lower()}")
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError(f"contract {self.name} did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None and self._runner
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=self.max_body)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        started.set()
        self._loop.run_forever()
        self._loop.close()
