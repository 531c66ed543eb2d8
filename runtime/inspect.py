"""``box inspect``: Docker's JSON shape for what we hold."""

from __future__ import annotations

import os
from typing import Any

from runtime.containers import effective_state
from runtime.paths import Paths


def container_view(paths: Paths, cfg: dict[str, Any]) -> dict[str, Any]:
    box = cfg.get("Box") or {}
    overlay = paths.overlay_dir(cfg["ID"])
    host = dict(cfg["HostConfig"])
    host.setdefault("ContainerIDFile", "")
    host.setdefault("PortBindings", {})
    return {
        "Id": cfg["ID"],
        "Created": cfg["Created"],
        "Path": cfg["Path"],
        "Args": cfg.get("Args", []),
        "State": effective_state(cfg),
        "Image": cfg["Image"],
        "ResolvConfPath": cfg.get("ResolvConfPath", ""),
        "HostnamePath": cfg.get("HostnamePath", ""),
        "HostsPath": cfg.get("HostsPath", ""),
        "LogPath": cfg.get("LogPath", ""),
        "Name": cfg["Name"],
        "RestartCount": cfg.get("RestartCount", 0),
        "Driver": cfg.get("Driver", "overlay2"),
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host,
        "GraphDriver": {
            "Data": {
                "LowerDir": ":".join(box.get("LowerDirs") or []),
                "MergedDir": os.path.join(overlay, "merged"),
                "UpperDir": os.path.join(overlay, "diff"),
                "WorkDir": os.path.join(overlay, "work"),
            },
            "Name": "overlay2",
        },
        "Mounts": [],
        "Config": cfg["Config"],
        "NetworkSettings": {"Networks": {host.get("NetworkMode", "none"): {}}},
        "Box": {k: v for k, v in box.items() if k != "LowerDirs"},
    }


def image_view(paths: Paths, ref: str) -> dict[str, Any]:
    from runtime.images.store import ImageStore

    img = ImageStore(paths.root).resolve(ref)
    return {
        "Id": img.id,
        "RepoTags": list(img.repo_tags),
        "RepoDigests": [],
        "Created": img.created,
        "Config": img.config,
        "Architecture": "amd64",
        "Os": "linux",
        "Size": img.size,
        "GraphDriver": {"Data": {"LowerDir": ":".join(str(d) for d in img.layer_dirs)},
                        "Name": "overlay2"},
        "RootFS": {"Type": "layers"},
    }
