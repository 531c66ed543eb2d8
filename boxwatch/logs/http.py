"""The one HTTP call every log store makes: JSON in, JSON out, errors as one line."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from boxwatch.logs.query import LogStoreError


def basic_auth(username: str, password: str) -> dict[str, str]:
    if not username:
        return {}
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def call(method: str, url: str, params: dict[str, str] | None = None, body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> Any:
    """The decoded JSON answer; LogStoreError with the status and the server's message."""
    if params:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
    data = None
    hdrs = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    shown = url.split("?", 1)[0]
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip().replace("\n", " ")[:500]
        raise LogStoreError(f"{method} {shown}: HTTP {exc.code}: {text}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LogStoreError(f"cannot reach {shown}: {reason}") from None
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        raise LogStoreError(f"{method} {shown}: not JSON: {raw[:200]!r}") from None
