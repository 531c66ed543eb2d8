"""The last log lines an OOM alert carries: the tail of a container's json-file log,
found through its state file's ``LogPath``. Apart from the watcher (``alerts``): reading
Docker's log format is one idea, noticing a kill another.
"""

from __future__ import annotations

import os

import orjson

from cgroupstats.model import ContainerRef

LOG_LINES = 20
LOG_TAIL_BYTES = 64 * 1024  # enough for 20 lines of ordinary logs; long lines are cut


def tail_log(path: str, n: int = LOG_LINES) -> list[dict[str, str]]:
    """The last ``n`` json-file entries of ``path`` as {"time", "stream", "log"}.

    Read with orjson here rather than through ``shipper.parse`` so the collector stays
    independent of the shipper (the format is Docker's, a public contract); a torn or
    foreign line is kept raw rather than dropped."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - LOG_TAIL_BYTES)
            f.seek(start)
            data = f.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if start:
        lines = lines[1:]  # the first one is cut in the middle
    out: list[dict[str, str]] = []
    for raw in lines[-(n + 1) :]:
        if not raw:
            continue
        try:
            doc = orjson.loads(raw)
            out.append({"time": str(doc.get("time", "")), "stream": str(doc.get("stream", "")),
                        "log": str(doc.get("log", "")).rstrip("\n")})
        except (orjson.JSONDecodeError, AttributeError):
            out.append({"time": "", "stream": "", "log": raw.decode(errors="replace")})
    return out[-n:]


def log_path(ref: ContainerRef) -> str:
    """The json-file log of a container, from its config.v2.json (``LogPath``)."""
    if not ref.state_file:
        return ""
    try:
        with open(ref.state_file, "rb") as f:
            value = orjson.loads(f.read()).get("LogPath")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
