"""Container metadata for log records, read from Docker's ``config.v2.json``.

The fields (Docker's names): ``ID``, ``Name`` ("/web": shipped without the slash), ``Config.Image``
(what the user ran, e.g. "busybox"; the top-level ``Image`` is the sha256 id) and ``Config.Labels``
(only those the whitelist admits), read through the bottom layer's ``formats.statefile`` and
``formats.labels`` (the collector's too). A file is re-read when its (inode, mtime, size) changes:
box and dockerd replace it atomically, so a new inode means a new version. When the container is
removed the last metadata is kept for ``keep_for`` seconds, so the lines still being shipped after
``rm`` carry its name."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import orjson

from formats import statefile
from formats.labels import LabelWhitelist


@dataclass(frozen=True, slots=True)
class ContainerMeta:
    """What a record carries about its container."""

    id: str
    name: str
    image: str
    labels: dict[str, str] = field(default_factory=dict)


def read_config(path: str, whitelist: LabelWhitelist) -> ContainerMeta:
    """Parse one ``config.v2.json``; OSError if unreadable, ValueError if not one."""
    with open(path, "rb") as f:
        obj = orjson.loads(f.read())
    if not isinstance(obj, dict) or not statefile.container_id(obj):
        raise ValueError(f"{path}: no container ID in config.v2.json")
    return ContainerMeta(
        id=statefile.container_id(obj),
        name=statefile.container_name(obj),
        image=statefile.image_name(obj),
        labels=whitelist.filter(statefile.labels(obj)),
    )


class MetadataCache:
    """``container dir -> ContainerMeta``, re-read on change, kept a while after removal.
    Errors (a half-written file from a non-atomic writer, bad JSON) keep the last good
    metadata and are counted in ``errors``."""

    def __init__(self, whitelist: LabelWhitelist | None = None, keep_for: float = 300.0) -> None:
        self.whitelist = whitelist or LabelWhitelist([])
        self.keep_for = keep_for
        self.errors = 0
        self._cache: dict[str, tuple[tuple[int, int, int] | None, ContainerMeta, float]] = {}

    def get(self, container_dir: str, now: float | None = None) -> ContainerMeta:
        """The metadata of the container living in ``container_dir`` (its basename as the id
        and empty fields when it has no readable config.v2.json)."""
        now = time.monotonic() if now is None else now
        path = os.path.join(container_dir, statefile.CONFIG)
        cached = self._cache.get(container_dir)
        try:
            st = os.stat(path)
        except OSError:
            if cached is not None:  # removed: keep the last metadata for keep_for
                stamp, meta, gone = cached
                if stamp is not None:
                    self._cache[container_dir] = (None, meta, now)
                return meta
            return ContainerMeta(os.path.basename(container_dir), "", "")
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            meta = read_config(path, self.whitelist)
        except (OSError, ValueError):
            self.errors += 1
            return cached[1] if cached else ContainerMeta(os.path.basename(container_dir), "", "")
        self._cache[container_dir] = (stamp, meta, now)
        return meta

    def expire(self, now: float | None = None) -> int:
        """Forget containers removed more than ``keep_for`` seconds ago."""
        now = time.monotonic() if now is None else now
        old = [d for d, (stamp, _, gone) in self._cache.items()
               if stamp is None and now - gone > self.keep_for]
        for d in old:
            del self._cache[d]
        return len(old)
