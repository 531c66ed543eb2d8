"""A client for the OCI distribution API (``/v2/``): auth, manifests, blobs, uploads.

Plain ``http.client``: one connection per request, so layers can be moved from several
threads. Auth follows the registry's ``WWW-Authenticate`` challenge: ``Basic`` sends the
stored credentials; ``Bearer realm=...,service=...`` fetches a token from the realm
(with the credentials, if any) for the scopes this operation needs, cached per scope.

HTTPS is used unless the registry is insecure: loopback (127.0.0.0/8, ::1, localhost),
as Docker treats it, or named by ``--insecure-registry`` / ``BOX_INSECURE_REGISTRIES``.
An insecure registry is tried over plain HTTP first, then HTTPS without verification.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import re
import ssl
import threading
import urllib.parse
from collections.abc import Iterable
from typing import IO, Any

from runtime.errors import BoxError

_TIMEOUT = 60
# A body read whole (manifest, index, token, error) is at most this: moby's manifest
# limit (distribution's maxManifestBodySize). Blobs are streamed, bounded by their
# descriptor's size (pull.py).
MAX_BODY = 4 << 20
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(BoxError):
    """A registry said no, or could not be reached; the message names what was asked."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Unauthorized(RegistryError):
    pass


def is_insecure(host: str, extra: Iterable[str] = ()) -> bool:
    """Docker's default: loopback registries speak plain HTTP; plus the configured ones."""
    env = [h.strip() for h in os.environ.get("BOX_INSECURE_REGISTRIES", "").split(",")]
    if host in set(extra) | {h for h in env if h}:
        return True
    hostname = urllib.parse.urlsplit("//" + host).hostname or host
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class BodyTooLarge(RegistryError):
    """A body read whole was over its cap: refused before all of it was read."""


def read_capped(resp: http.client.HTTPResponse, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``resp``; BodyTooLarge (naming ``what``) when it
    announces or holds more. Reading stops at ``limit + 1``: a hostile server's endless
    body costs nothing."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise BodyTooLarge(f"{what}: {length} bytes, over the {limit} byte limit")
    data = resp.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(f"{what}: more than the {limit} byte limit")
    return data


class Response:
    """Status, headers and (unless streamed) body of one exchange; a body read whole is
    capped at ``limit`` bytes."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection,
                 stream: bool, what: str = "response", limit: int = MAX_BODY) -> None:
        self.status = resp.status
        self.headers = resp.headers
        self._resp, self._conn = resp, conn
        if stream:
            self.body = b""
            return
        try:
            self.body = read_capped(resp, limit, what)
        finally:
            conn.close()

    def read(self, n: int = -1) -> bytes:
        return self._resp.read(n)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def error(self, what: str) -> RegistryError:
        """Docker's wording: the registry's error code and message when it sent them."""
        code = msg = ""
        try:
            errors = json.loads(self.body or b"{}").get("errors") or []
            if errors:
                code, msg = errors[0].get("code", ""), errors[0].get("message", "")
        except (ValueError, AttributeError):
            pass
        detail = f"{code.lower().replace('_', ' ')}: {msg}" if code else f"HTTP {self.status}"
        cls = Unauthorized if self.status == 401 else RegistryError
        return cls(f"{what}: {detail}", self.status, code)


class Client:
    """Talks to one registry host for one repository's scopes."""

    def __init__(self, host: str, credentials: tuple[str, str] | None = None,
                 insecure: Iterable[str] = (), scopes: Iterable[str] = ()) -> None:
        self.host = host
        self.credentials = credentials
        self.insecure = is_insecure(host, insecure)
        self.scopes = sorted(set(scopes))
        self._scheme: str | None = None
        self._auth: str | None = None  # Authorization header value
        self._lock = threading.Lock()

    # ---- transport ----------------------------------------------------------------

    def _connect(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(host, timeout=_TIMEOUT)
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, timeout=_TIMEOUT, context=ctx)

    def scheme(self) -> str:
        """https; for an insecure registry plain http first, then https unverified when
        the port turns out to speak TLS (Go answers plain HTTP with a 400 saying so)."""
        if self._scheme is None:
            for scheme in ("http", "https") if self.insecure else ("https",):
                try:
                    conn = self._connect(scheme, self.host)
                    conn.request("GET", "/v2/")
                    resp = conn.getresponse()
                    body = resp.read(512)
                    conn.close()
                    if scheme == "http" and resp.status == 400 and b"HTTPS" in body:
                        continue
                    self._scheme = scheme
                    break
                except (ssl.SSLError, ConnectionError, http.client.HTTPException) as e:
                    if scheme == "https":
                        raise RegistryError(f"Get \"{scheme}://{self.host}/v2/\": {e}") from None
                except OSError as e:
                    raise RegistryError(f"Get \"{scheme}://{self.host}/v2/\": "
                                        f"{e.strerror or e}") from None
            else:
                raise RegistryError(f"{self.host}: no usable HTTP or HTTPS endpoint")
        return self._scheme

    def url(self, path: str) -> str:
        return f"{self.scheme()}://{self.host}{path}"

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: bytes | IO[bytes] | None, stream: bool) -> Response:
        parts = urllib.parse.urlsplit(url)
        headers = {"User-Agent": "box/0.1.0", **headers}
        conn = self._connect(parts.scheme, parts.netloc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, body=body, headers=headers)
            return Response(conn.getresponse(), conn, stream, f"{method} {url}")
        except BaseException:
            conn.close()
            raise

    def request(self, method: str, path_or_url: str, headers: dict[str, str] | None = None,
                body: bytes | IO[bytes] | None = None, stream: bool = False,
                redirects: int = 5) -> Response:
        """One exchange, authenticating (once) when challenged; follows GET redirects.

        A streamed body (a file) cannot be replayed after a 401: callers that send one
        first make a cheap authenticated request (every upload starts with a POST).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        hdrs = dict(headers or {})
        if body is None and method in ("PUT", "POST", "PATCH"):
            hdrs.setdefault("Content-Length", "0")
        for attempt in (0, 1):
            if self._auth and urllib.parse.urlsplit(url).netloc == self.host:
                hdrs["Authorization"] = self._auth
            resp = self._send(method, url, hdrs, body, stream)
            if resp.status == 401 and attempt == 0 and (body is None or isinstance(body, bytes)):
                challenge = resp.headers.get("WWW-Authenticate", "")
                if stream:
                    resp.close()
                self._authenticate(challenge)
                continue
            if resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD") \
                    and redirects > 0:
                location = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
                if stream:
                    resp.close()
                hdrs.pop("Authorization", None)  # never to another host
                url = location
                redirects -= 1
                continue
            return resp
        return resp

    # ---- auth -----------------------------------------------------------------------

    def _authenticate(self, challenge: str) -> None:
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_RE.findall(params_text))
        with self._lock:
            if kind.lower() == "basic":
                if not self.credentials:
                    raise Unauthorized(f"{self.host}: authentication required (box login "
                                       f"{self.host})", 401)
                user, password = self.credentials
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                self._auth = f"Basic {token}"
            elif kind.lower() == "bearer":
                self._auth = f"Bearer {self._token(params)}"
            else:
                raise Unauthorized(f"{self.host}: unsupported auth challenge {kind!r}", 401)

    def _token(self, params: dict[str, str]) -> str:
        realm = params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise Unauthorized(f"{self.host}: bearer challenge without a usable realm", 401)
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        scopes = set(self.scopes)
        if params.get("scope"):
            scopes.update(params["scope"].split(" "))
        query += [("scope", s) for s in sorted(scopes)]
        headers = {}
        if self.credentials:
            user, password = self.credentials
            query.append(("account", user))
            raw = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {raw}"
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        resp = self._send("GET", url, headers, None, stream=False)
        if resp.status != 200:
            raise resp.error(f"{self.host}: token request to {realm}")
        try:
            data = json.loads(resp.body)
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, AttributeError):
            raise Unauthorized(f"{self.host}: token server {realm} sent no token", 401) from None

    def ping(self) -> None:
        """GET /v2/ with the credentials: what ``box login`` checks."""
        resp = self.request("GET", "/v2/")
        if resp.status != 200:
            raise resp.error(f"login to {self.host}")

    # ---- distribution API -------------------------------------------------------------

    def get_manifest(self, repo: str, ref: str, accept: Iterable[str]) -> Response:
        try:
            resp = self.request("GET", f"/v2/{repo}/manifests/{ref}",
                                {"Accept": ", ".join(accept)})
        except BodyTooLarge:
            raise BodyTooLarge(f"manifest for {self.host}/{repo}:{ref}: larger than the "
                               f"{MAX_BODY} byte limit, refused") from None
        if resp.status != 200:
            raise resp.error(f"manifest for {self.host}/{repo}:{ref}")
        return resp

    def put_manifest(self, repo: str, ref: str, media_type: str, body: bytes) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}",
                            {"Content-Type": media_type}, body)
        if resp.status not in (200, 201):
            raise resp.error(f"put manifest {self.host}/{repo}:{ref}")
        return resp.headers.get("Docker-Content-Digest", "")

    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if resp.status == 200:
            return True
        if resp.status == 404:
            return False
        raise resp.error(f"HEAD blob {digest} in {repo}")

    def get_blob(self, repo: str, digest: str) -> Response:
        """The blob's body to stream (the caller bounds it by the descriptor's size)."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", stream=True)
        if resp.status != 200:
            try:
                resp.body = read_capped(resp._resp, MAX_BODY, f"blob {digest} error body")
            finally:
                resp.close()
            raise resp.error(f"blob {digest} of {self.host}/{repo}")
        return resp

    def start_upload(self, repo: str, mount: str | None = None,
                     source: str | None = None) -> tuple[bool, str]:
        """(mounted, upload location). ``mount``+``source``: ask for a cross-repo mount."""
        query = "?" + urllib.parse.urlencode({"mount": mount, "from": source}) if mount else ""
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/{query}")
        if resp.status == 201:
            return True, ""
        if resp.status != 202:
            raise resp.error(f"start upload to {self.host}/{repo}")
        return False, self._location(resp)

    def _location(self, resp: Response) -> str:
        loc = resp.headers.get("Location", "")
        if not loc:
            raise RegistryError(f"{self.host}: upload response without Location")
        return urllib.parse.urljoin(self.url("/"), loc)

    def upload_status(self, location: str) -> tuple[int, str] | None:
        """(bytes the registry holds, fresh location), or None if the session is gone."""
        resp = self.request("GET", location)
        if resp.status != 204:
            return None
        rng = resp.headers.get("Range", "0-0")
        end = int(rng.rpartition("-")[2] or 0)
        held = end + 1 if end > 0 else 0
        return held, self._location(resp)

    def patch_chunk(self, location: str, start: int, data: bytes) -> str:
        resp = self.request("PATCH", location, {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
            "Content-Length": str(len(data)),
        }, data)
        if resp.status != 202:
            raise resp.error(f"upload chunk at {start}")
        return self._location(resp)

    def finish_upload(self, location: str, digest: str, data: bytes = b"") -> None:
        sep = "&" if "?" in location else "?"
        resp = self.request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}",
                            {"Content-Type": "application/octet-stream",
                             "Content-Length": str(len(data))}, data)
        if resp.status != 201:
            raise resp.error(f"commit blob {digest}")


def json_body(resp: Response, what: str) -> Any:
    try:
        return json.loads(resp.body)
    except ValueError:
        raise RegistryError(f"{what}: the registry sent invalid JSON") from None
