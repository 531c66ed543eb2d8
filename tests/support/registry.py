"""A real ``docker-registry`` (Debian's distribution 2.8) on a loopback port, optionally
with htpasswd basic auth, and a TCP proxy in front of it that records every request
and can cut one connection (to play "the network dropped during an upload")."""

from __future__ import annotations

import select
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import Server, free_port

REGISTRY = "/usr/bin/docker-registry"


def bcrypt_hash(password: str) -> str:
    """An htpasswd bcrypt entry without apache2-utils or the bcrypt wheel: the stdlib
    ``crypt`` (deprecated in 3.11, still there) over libxcrypt, which makes ``$2b$``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as _crypt

        return _crypt.crypt(password, _crypt.mksalt(_crypt.METHOD_BLOWFISH))


class Registry(Server):
    name = "registry"
    ready_path = "/v2/"
    ready_status = (200, 401)

    def __init__(self, workdir: Path, port: int, users: dict[str, str] | None = None) -> None:
        super().__init__(workdir, port)
        self.host = f"127.0.0.1:{port}"
        auth = ""
        if users:
            htpasswd = workdir / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: box-test\n    path: {htpasswd}\n"
        self.config = workdir / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir}/data\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: box-test-secret\n"
            + auth
        )

    def argv(self) -> list[str]:
        return [REGISTRY, "serve", str(self.config)]


@contextmanager
def registry(users: dict[str, str] | None = None) -> Iterator[Registry]:
    workdir = Path(tempfile.mkdtemp(prefix="box-registry-"))
    server = Registry(workdir, free_port(), users)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Seen:
    method: str
    path: str
    length: int  # Content-Length of the request body
    forwarded: bool


@dataclass
class Proxy:
    """Forwards 127.0.0.1:port -> upstream, one request per connection (as box sends);
    ``cut_patch = n`` closes the n-th PATCH before the registry sees any of it."""

    upstream: tuple[str, int]
    cut_patch: int = 0
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def requests(self, method: str, contains: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and contains in s.path]

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        with client:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            line, _, rest = head.partition(b"\r\n")
            method, path = line.decode().split(" ")[:2]
            length = 0
            for h in rest.split(b"\r\n"):
                name, _, value = h.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            with self._lock:
                patches = sum(1 for s in self.seen if s.method == "PATCH") + (method == "PATCH")
                cut = method == "PATCH" and patches == self.cut_patch
                self.seen.append(Seen(method, path, length, not cut))
            if cut:
                client.shutdown(socket.SHUT_RDWR)
                return
            with socket.create_connection(self.upstream) as up:
                up.sendall(head)
                _pump(client, up)


def _pump(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    open_ = {a, b}
    while open_:
        ready, _, _ = select.select(list(open_), [], [], 30)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                open_.discard(s)
                try:
                    peers[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            peers[s].sendall(data)


class TokenGate:
    """A bearer-token front for a registry (the Docker token auth flow): ``/v2/...`` needs
    ``Authorization: Bearer <token>``, else 401 with ``WWW-Authenticate: Bearer realm=...``;
    ``/token`` hands out a token for the asked scopes to ``users`` (basic auth). Allowed
    requests are forwarded to the real registry. Records the token requests it served."""

    def __init__(self, upstream: str, users: dict[str, str]) -> None:
        import asyncio

        self.upstream = upstream
        self.users = users
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.token_requests: list[dict[str, object]] = []
        self._tokens: dict[str, set[str]] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("token gate did not start")

    def _run(self) -> None:
        import asyncio

        from aiohttp import web

        app = web.Application(client_max_size=64 << 20)
        app.router.add_get("/token", self._token)
        app.router.add_route("*", "/v2/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _token(self, request):
        import base64
        import os

        from aiohttp import web

        user = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(name) != pw:
                return web.json_response({"details": "bad credentials"}, status=401)
            user = name
        scopes = set(request.query.getall("scope", []))
        self.token_requests.append({"user": user, "scopes": sorted(scopes),
                                    "service": request.query.get("service")})
        if user is None:
            scopes = set()  # anonymous: no access at all in this test registry
        token = os.urandom(8).hex()
        self._tokens[token] = scopes
        return web.json_response({"token": token, "expires_in": 300})

    def _allowed(self, token: str, path: str, method: str) -> bool:
        parts = path.split("/")
        if path in ("/v2/", "/v2"):
            return token in self._tokens
        for marker in ("blobs", "manifests"):
            if marker in parts:
                repo = "/".join(parts[2:parts.index(marker)])
                need = "pull" if method in ("GET", "HEAD") else "push"
                for scope in self._tokens.get(token, ()):
                    _, name, actions = scope.split(":")
                    if name == repo and need in actions.split(","):
                        return True
        return False

    async def _forward(self, request):
        import aiohttp
        from aiohttp import web

        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not self._allowed(token, request.path, request.method):
            challenge = (f'Bearer realm="http://{self.host}/token",service="box-test-registry"')
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("authorization", "host", "content-length")}
        async with aiohttp.ClientSession(auto_decompress=False) as s, s.request(
                request.method, f"http://{self.upstream}{request.path_qs}", data=body,
                headers=headers, allow_redirects=False) as resp:
            data = await resp.read()
            out = {k: v.replace(self.upstream, self.host) for k, v in resp.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "connection")}
            return web.Response(status=resp.status, body=data, headers=out)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
