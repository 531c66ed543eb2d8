"""An image's config blob, both ways: what the runtime reads from one (every key of
``config`` present, optional strings as "", the layers' diff_ids, so no caller meets a
None or a wrong type) and the blob ``box import`` writes for a rootfs tarball. Apart
from the store, which keeps blobs by digest and never looks inside beyond these."""

from __future__ import annotations

import json

from formats.units import rfc3339nano
from runtime.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

_CONFIG_DEFAULTS: dict[str, Any] = {
    "Env": [], "Cmd": [], "Entrypoint": [], "WorkingDir": "", "User": "",
    "ExposedPorts": {}, "Labels": {}, "StopSignal": "", "Volumes": {},
}
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def optional_str(value: object) -> str:
    """An optional string field: missing, null or another type reads as ""."""
    return value if isinstance(value, str) else ""


def diff_ids_of(blob: dict[str, Any]) -> list[str]:
    """rootfs.diff_ids, [] when absent or malformed (an image may have no layer at all)."""
    rootfs = blob.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [d for d in ids if isinstance(d, str)] if isinstance(ids, list) else []


def container_config(blob: dict[str, Any]) -> dict[str, Any]:
    """The blob's ``config`` with every key the runtime reads present (null ones too)."""
    config = dict(_CONFIG_DEFAULTS)
    given = blob.get("config")
    if isinstance(given, dict):
        config.update({k: v for k, v in given.items() if v is not None})
    return config


def config_from_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_CONFIG_DEFAULTS))
    if unknown:
        raise InvalidArgument(f"unknown image config key in changes: {unknown[0]!r}")
    config = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
              for k, v in _CONFIG_DEFAULTS.items()}
    for key, value in changes.items():
        if not isinstance(value, type(_CONFIG_DEFAULTS[key])):
            raise InvalidArgument(f"image config {key} must be a "
                                  f"{type(_CONFIG_DEFAULTS[key]).__name__}: {value!r}")
        config[key] = value
    return config


def imported_blob(config: dict[str, Any], diff_id: str, message: str | None) -> bytes:
    """The config blob of a one-layer image made by ``box import``."""
    import platform

    created = rfc3339nano()
    return json.dumps({
        "architecture": _GOARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "comment": message or "Imported from -"}],
    }, separators=(",", ":")).encode()
