"""The InfluxDB 1.x write API as both programs speak it: ``POST /write?db=&rp=&precision=ns``
with line protocol, ``CREATE DATABASE`` through ``/query``, basic auth in a header.

No I/O here: ``V1Write`` builds the requests and reads the answers; the collector sends
them with urllib from its sender thread, the shipper with aiohttp from its event loop, so
both write, authenticate, compress, create the database and judge an answer the same way.
Credentials never appear in a URL, a log line or an error (``secrets`` lists what to
redact). The credentials file (netrc form, below) is read here too, so every program that
talks to the local stack's InfluxDB reads the same format from the same path.
"""

from __future__ import annotations

import json
import urllib.parse

from formats.delivery import basic_auth, parse_retry_after, redact, split_userinfo, wants_gzip


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_message(body: bytes) -> str:
    """InfluxDB's ``{"error": "..."}``, or the body's first line."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:500] if text else ""
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or text)[:500]
    return text[:500]


class Refused(Exception):
    """The server answered a request with an error: the status, its message (redacted),
    its Retry-After in seconds (None if absent) and whether the database is missing."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def database_missing(self) -> bool:
        """InfluxDB 1.x lost the database (dropped, or the server wiped): create it again."""
        return self.status == 404 and "database not found" in self.message


class V1Write:
    """One database on one InfluxDB 1.x server. ``gzip``: ``auto`` (only off loopback),
    ``always`` or ``never`` (see ``formats.delivery.wants_gzip``); ValueError for a URL
    that is not http(s)."""

    def __init__(self, url: str, db: str, rp: str = "", user: str = "", password: str = "",
                 gzip: str = "auto") -> None:
        base, url_user, url_password = split_userinfo(url)
        self.base = base
        self.db = db
        self.rp = rp
        self.user = user or url_user
        self.password = password or url_password
        self.gzip = wants_gzip(base, gzip)
        params = {"db": db, "precision": "ns"}
        if rp:
            params["rp"] = rp
        self.write_url = f"{base}/write?{urllib.parse.urlencode(params)}"
        self.auth: dict[str, str] = {}
        if self.user or self.password:
            self.auth["Authorization"] = basic_auth(self.user, self.password)
        self.headers = {"Content-Type": "text/plain; charset=utf-8", **self.auth}
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.create_url = f"{base}/query"
        self.create_body = urllib.parse.urlencode(
            {"q": f"CREATE DATABASE {quote_ident(db)}"}).encode()
        self.create_headers = {**self.auth, "Content-Type": "application/x-www-form-urlencoded"}

    def __repr__(self) -> str:
        return f"V1Write({self.base!r}, db={self.db!r}, user={self.user!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = self.auth.get("Authorization", "").partition(" ")[2]
        return tuple(s for s in (self.password, auth) if s)

    def body(self, lines: bytes) -> bytes:
        """What to POST to ``write_url`` for ``lines`` of line protocol."""
        if not self.gzip:
            return lines
        import gzip

        return gzip.compress(lines, compresslevel=1)

    def check(self, status: int, body: bytes, retry_after: str | None = None) -> None:
        """Nothing for a 2xx answer; ``Refused`` (message redacted) otherwise."""
        if status < 300:
            return
        message = redact(server_message(body) or f"HTTP {status}", self.secrets)
        raise Refused(status, message, parse_retry_after(retry_after))


# -- the credentials file --------------------------------------------------------------
# netrc form, one ``default`` entry: ``default login USER password PASSWORD``. The local
# stack writes it (0600) and the collector, the shipper, ``boxwatch logs`` and the demo
# read it, so the password never travels in argv or the environment; ``curl --netrc-file``
# reads it as well.

_NETRC_KEYS = {"login", "password", "account"}


def credentials_text(user: str, password: str) -> str:
    """The file's content; ValueError for a user or password netrc cannot hold."""
    for what, value in (("user", user), ("password", password)):
        if not value or any(c.isspace() for c in value) or value.startswith("#"):
            raise ValueError(f"the {what} must be non-empty, without spaces, not starting with #")
    return f"default login {user} password {password}\n"


def parse_credentials(text: str, host: str = "") -> tuple[str, str]:
    """(user, password) of the ``machine host`` entry, else of ``default``; ValueError
    saying what is wrong, never quoting a token (it may be the password)."""
    tokens: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        tokens += [(number, t) for t in line.split()]
    entries: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    i = 0
    while i < len(tokens):
        number, token = tokens[i]
        if token == "default":
            current = entries.setdefault("", {})
            i += 1
        elif token == "machine" and i + 1 < len(tokens):
            current = entries.setdefault(tokens[i + 1][1], {})
            i += 2
        elif token in _NETRC_KEYS and current is not None and i + 1 < len(tokens):
            current[token] = tokens[i + 1][1]
            i += 2
        else:
            raise ValueError(f"line {number}: not netrc (expected "
                             "'default login USER password PASSWORD')")
    entry = entries.get(host) if host else None
    entry = entry or entries.get("")
    if not entry or not entry.get("login"):
        wanted = f"'machine {host}' or 'default'" if host else "'default'"
        raise ValueError(f"no {wanted} entry with a login")
    return entry["login"], entry.get("password", "")


def read_credentials(path: str, host: str = "") -> tuple[str, str]:
    """(user, password) from the credentials file at ``path``; ValueError naming the file
    and what is wrong (unreadable, not netrc), never its content."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read credentials file {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"credentials file {path!r}: not UTF-8 text") from None
    try:
        return parse_credentials(text, host)
    except ValueError as exc:
        raise ValueError(f"credentials file {path!r}: {exc}") from None
