"""``box inspect``: Docker's JSON shape for what we hold."""

from __future__ import annotations

import os
from typing import Any

from runtime.paths import Paths
from runtime.state import effective_state


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
        "Mounts": _mounts(cfg),
        "Config": cfg["Config"],
        "NetworkSettings": _network_settings(cfg, host),
        "Box": {k: v for k, v in box.items() if k != "LowerDirs"},
    }


def _mounts(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    if not cfg.get("MountPoints"):
        return []
    from runtime.volumes import inspect_mounts

    return inspect_mounts(cfg["MountPoints"])


def _network_settings(cfg: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    """Docker's NetworkSettings; none/host/container: modes have no addresses of their own."""
    settings = {"Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "IPAddress": "",
                "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                "Networks": {host.get("NetworkMode", "none"): {}}}
    settings.update(cfg.get("NetworkSettings") or {})
    if not settings.get("Networks"):
        settings["Networks"] = {host.get("NetworkMode", "none"): {}}
    return settings


def image_view(paths: Paths, ref: str) -> dict[str, Any]:
    """Docker's image inspect shape; Config carries ExposedPorts, Volumes, Healthcheck
    and the rest as the image defines them."""
    import json

    from runtime.images.store import ImageStore

    store = ImageStore(paths.root)
    img = store.resolve(ref)
    blob = json.loads(store.config_bytes(img.id))
    history = blob.get("history")
    last = history[-1] if isinstance(history, list) and history else None
    return {
        "Id": img.id,
        "RepoTags": list(img.repo_tags),
        "RepoDigests": list(img.repo_digests),
        "Parent": "",
        "Comment": _text(last.get("comment")) if isinstance(last, dict) else "",
        "Created": img.created,
        "DockerVersion": _text(blob.get("docker_version")),
        "Author": _text(blob.get("author")),
        "Config": img.config,
        "Architecture": img.architecture or "amd64",
        **({"Variant": blob["variant"]} if _text(blob.get("variant")) else {}),
        "Os": img.os,
        "Size": img.size,
        "GraphDriver": {"Data": {"LowerDir": ":".join(str(d) for d in img.layer_dirs)},
                        "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _text(value: object) -> str:
    """An optional string of the image config: missing, null or another type is ""."""
    return value if isinstance(value, str) else ""


def print_inspected(items: list[Any], fmt: str | None) -> None:
    """What every ``inspect`` prints: Docker's indented JSON array, or one ``-f`` template
    rendering per object."""
    import json

    if fmt:
        from runtime.format.template import compile_template

        tmpl = compile_template(fmt)
        for item in items:
            print(tmpl.render(item))
    else:
        print(json.dumps(items, indent=4))
