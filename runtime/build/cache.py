"""Docker's build cache rule: a step is reused when its parent image and its instruction
match (for COPY/ADD, the checksum of the files' content and metadata too). An entry is
the resulting config blob, under ``<root>/build/cache/<sha256 of parent + key>``; one
whose layers left the image store (``box rmi``) is a miss."""

from __future__ import annotations

import hashlib
import json
import os

from formats.atomicfile import write_atomic
from runtime.build.state import BuildState, encode
from runtime.images.store import ImageStore


class BuildCache:
    def __init__(self, root: str, store: ImageStore) -> None:
        self.dir = os.path.join(root, "build", "cache")
        self.store = store

    def _path(self, parent_id: str, key: str) -> str:
        digest = hashlib.sha256(f"{parent_id}\n{key}".encode()).hexdigest()
        return os.path.join(self.dir, digest)

    def get(self, parent: BuildState, key: str) -> BuildState | None:
        try:
            with open(self._path(parent.id, key), "rb") as f:
                blob = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return None
        state = BuildState(blob)
        if not all(self.store.has_layer(d) for d in state.diff_ids):
            return None
        return state

    def put(self, parent: BuildState, key: str, state: BuildState) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        path = self._path(parent.id, key)
        write_atomic(path, encode(state.blob), 0o666)
