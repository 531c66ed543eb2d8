"""The image a stage grows, step by step: an OCI config blob whose sha256 is the step's
image ID (what "---> <id>" prints), so a step's result is the same ID whether it was
built now or reused from the cache."""

from __future__ import annotations

import copy
import hashlib
import json
import platform
from typing import Any

from formats.units import rfc3339nano
from runtime.images.config import diff_ids_of
from runtime.images.store import Image, ImageStore

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
DEFAULT_SHELL = ["/bin/sh", "-c"]


def host_platform() -> str:
    machine = platform.machine()
    return f"linux/{GOARCH.get(machine, machine)}"


def encode(blob: dict[str, Any]) -> bytes:
    return json.dumps(blob, separators=(",", ":")).encode()


class BuildState:
    """One step's image: the config blob and its ID; ``shell`` and the ARGs in scope
    are build-time only (not in the image, as in Docker)."""

    def __init__(self, blob: dict[str, Any]) -> None:
        self.blob = blob
        self.id = "sha256:" + hashlib.sha256(encode(blob)).hexdigest()

    @classmethod
    def scratch(cls) -> BuildState:
        arch = host_platform().split("/")[1]
        return cls({"architecture": arch, "os": "linux", "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []}, "history": []})

    @classmethod
    def from_image(cls, store: ImageStore, image_id: str) -> BuildState:
        state = cls(json.loads(store.config_bytes(image_id)))
        state.id = image_id  # the stored bytes are the ID's, whatever their spacing
        return state

    @property
    def config(self) -> dict[str, Any]:
        return self.blob.get("config") or {}

    @property
    def diff_ids(self) -> list[str]:
        return diff_ids_of(self.blob)

    def child(self, created_by: str, change: dict[str, Any] | None = None,
              diff_id: str | None = None) -> BuildState:
        """The next step's image: ``change`` merged into config (a None value deletes a
        key), a layer appended when ``diff_id`` is given, one history entry."""
        blob = copy.deepcopy(self.blob)
        config = blob.setdefault("config", {}) or {}
        blob["config"] = config
        for key, value in (change or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        created = rfc3339nano()
        blob["created"] = created
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if diff_id is None:
            entry["empty_layer"] = True
        else:
            rootfs = blob.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            rootfs["diff_ids"] = [*diff_ids_of(blob), diff_id]
        blob.setdefault("history", [])
        blob["history"] = [*(blob["history"] or []), entry]
        return BuildState(blob)

    def image(self, store: ImageStore) -> Image:
        """The state as the runtime's container creation wants an image."""

        diff_ids = self.diff_ids
        config = {"Env": [], "Cmd": [], "Entrypoint": [], "WorkingDir": "", "User": "",
                  **{k: v for k, v in self.config.items() if v is not None}}
        return Image(id=self.id, repo_tags=[], config=config,
                     created=self.blob.get("created", ""),
                     layer_dirs=[store.layer_dir(d) for d in reversed(diff_ids)],
                     size=0, diff_ids=diff_ids, architecture=self.blob.get("architecture", ""),
                     os="linux")


def env_map(env: list[str]) -> dict[str, str]:
    out = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def env_list(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]
