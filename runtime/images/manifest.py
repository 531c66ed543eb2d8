"""Manifest media types and the small rules shared by load, save, pull and push."""

from __future__ import annotations

import json
import platform
import re
from typing import Any

from runtime.errors import InvalidArgument

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    return _GOARCH.get(platform.machine(), platform.machine())


def split_domain(name: str) -> tuple[str, str]:
    """``busybox`` -> (docker.io, library/busybox); ``127.0.0.1:5000/a`` -> (127.0.0.1:5000, a).

    Docker's rule: the first component is a registry host when it has a dot or a colon
    or is ``localhost``.
    """
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "docker.io", name if sep else f"library/{name}"


def check_digest(digest: object, where: str) -> str:
    """Only sha256 digests, well formed: they become file names in the store."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidArgument(f"{where}: unsupported or malformed digest {digest!r}")
    return digest


def media_type(doc: dict[str, Any], fallback: str = "") -> str:
    """A manifest's type: its mediaType, else guessed from its shape (OCI allows omitting it)."""
    mt = doc.get("mediaType")
    if isinstance(mt, str) and mt:
        return mt
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    return fallback


def pick_platform(index: dict[str, Any], where: str) -> dict[str, Any]:
    """The descriptor for linux on this host's architecture, else linux/amd64."""
    descs = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    arch = host_arch()
    for want in (arch, "amd64"):
        for d in descs:
            p = d.get("platform") or {}
            if p.get("os") == "linux" and p.get("architecture") == want:
                return d
    if len(descs) == 1 and not descs[0].get("platform"):
        return descs[0]
    raise InvalidArgument(f"{where}: no manifest for linux/{arch} or linux/amd64 in the index")


def load_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"{where}: invalid JSON: {e}") from None


def diff_ids_of(config: Any, where: str) -> list[str]:
    if not isinstance(config, dict):
        raise InvalidArgument(f"{where}: image config is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):  # an empty list is fine: an image without layers
        raise InvalidArgument(f"{where}: image config has no rootfs.diff_ids")
    return [check_digest(d, where) for d in diff_ids]


def dumps(doc: Any) -> bytes:
    """Compact JSON, the bytes whose sha256 is the digest."""
    return json.dumps(doc, separators=(",", ":")).encode()
