"""Who may use the web UI: loopback needs nothing; any other listen address needs a token,
checked on every request (pages, API, SSE and WebSocket alike), and WebSockets must come
from the page's own origin.

The token arrives as ``Authorization: Bearer``, as the ``boxwatch_token`` cookie, or once
as ``?token=`` in a link, which sets the cookie (HttpOnly, SameSite=Strict) and redirects
to the same URL without it, so the token does not stay in the address bar or in history.
A refusal is a bare 401 with a fixed body: nothing about the app leaks. ``/healthz`` (a
fixed ``ok`` for the stack's supervisor) is the one exception.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

COOKIE = "boxwatch_token"
OPEN_PATHS = frozenset({"/healthz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthConfigError(ValueError):
    """A listen address or token that cannot be used; the message names the value."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str, token_file: str) -> str:
    """The token to require ("" = none). A non-loopback ``host`` without one is an error."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise AuthConfigError(f"--auth-token-file: cannot read {token_file!r}: "
                                  f"{exc.strerror}") from None
        if not token:
            raise AuthConfigError(f"--auth-token-file: {token_file!r} is empty")
    if not token and not is_loopback(host):
        raise AuthConfigError(f"--listen {host!r} is not loopback: give --auth-token or "
                              "--auth-token-file")
    return token


def _unauthorized() -> web.Response:
    return web.Response(status=401, text="401 Unauthorized\n",
                        headers={"WWW-Authenticate": 'Bearer realm="boxwatch"'})


def middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The check, as an aiohttp middleware (a no-op without a token)."""
    wanted = token.encode()

    def good(given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), wanted)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token or request.path in OPEN_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and good(header[7:].strip()):
            return await handler(request)
        if good(request.cookies.get(COOKIE)):
            return await handler(request)
        if good(request.query.get("token")) and request.method == "GET":
            url = request.rel_url  # yarl has no without_query: the other params kept
            clean = url.with_query([(k, v) for k, v in url.query.items() if k != "token"])
            resp = web.HTTPFound(str(clean))
            resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return resp
        return _unauthorized()

    return check


def same_origin(request: web.Request) -> bool:
    """A WebSocket's ``Origin`` is this server (what browsers send and cannot forge); a
    client without one (not a browser) passes on its token alone."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin in (f"http://{request.host}", f"https://{request.host}")
