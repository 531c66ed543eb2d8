"""``box load``: Docker's ``docker save`` archives (legacy and Docker >= 25's OCI layout
with manifest.json), plain OCI image layouts, and skopeo's ``dir:`` layout.

Every image in the archive is planned first (manifests and configs read and checked),
then every missing layer is extracted into staging with its digests checked, and only
then is anything committed: a bad blob anywhere leaves the store as it was. A layer the
store already holds (same diff_id) is not read at all.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from typing import Any

from runtime.errors import InvalidArgument
from runtime.images import manifest as mf
from runtime.images.layerfs import UnsafeArchive
from runtime.images.progress import Progress
from runtime.images.sources import DigestReader, LoadError, Source, clean
from runtime.images.store import ImageStore, StagedLayer, parse_ref

# (blob path, compressed digest or None, diff_id)
PlannedLayer = namedtuple("PlannedLayer", "path digest diff_id")
Planned = namedtuple("Planned", "config layers refs")

_BLOB_RE = re.compile(r"^blobs/sha256/([a-f0-9]{64})$")
_LEGACY_CONFIG_RE = re.compile(r"^([a-f0-9]{64})\.json$")


def _json(src: Source, path: str, digest: str | None = None) -> Any:
    return mf.load_json(src.read_verified(path, digest), path)


def _digest_from_path(path: str) -> str | None:
    m = _BLOB_RE.match(path) or _LEGACY_CONFIG_RE.match(path)
    return "sha256:" + m.group(1) if m else None


def _blob_path(digest: str, flat: bool) -> str:
    hexpart = mf.check_digest(digest, "descriptor").removeprefix("sha256:")
    return hexpart if flat else f"blobs/sha256/{hexpart}"


def _ref(text: object, where: str) -> str:
    if not isinstance(text, str):
        raise LoadError(f"{where}: repository tag {text!r} is not a string")
    try:
        return ":".join(parse_ref(text))
    except InvalidArgument as e:
        raise LoadError(f"{where}: {e}") from None


def _plan_docker(src: Source, entries: Any) -> list[Planned]:
    """manifest.json: ``[{"Config": path, "RepoTags": [...], "Layers": [paths]}]``."""
    if not isinstance(entries, list) or not entries:
        raise LoadError("manifest.json: expected a non-empty list of images")
    out = []
    for i, entry in enumerate(entries):
        where = f"manifest.json[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise LoadError(f"{where}: needs Config and Layers")
        cfg_path = clean(entry["Config"], where)
        config = src.read_verified(cfg_path, _digest_from_path(cfg_path))
        diff_ids = mf.diff_ids_of(mf.load_json(config, cfg_path), cfg_path)
        paths = [clean(p, where) if isinstance(p, str) else clean("", where)
                 for p in entry["Layers"]]
        if len(paths) != len(diff_ids):
            raise LoadError(f"{where}: {len(paths)} layers but the config lists "
                            f"{len(diff_ids)} diff_ids")
        layers = [PlannedLayer(p, _digest_from_path(p) if _BLOB_RE.match(p) else None, d)
                  for p, d in zip(paths, diff_ids, strict=True)]
        refs = [_ref(t, where) for t in entry.get("RepoTags") or []]
        out.append(Planned(config, layers, refs))
    return out


def _plan_manifest(src: Source, desc: dict[str, Any], refs: list[str], flat: bool,
                   depth: int = 0) -> Planned:
    """One descriptor of an OCI layout (an index is narrowed to this platform)."""
    digest = mf.check_digest(desc.get("digest"), "index.json")
    path = _blob_path(digest, flat)
    doc = _json(src, path, digest)
    if not isinstance(doc, dict):
        raise LoadError(f"{path}: manifest is not a JSON object")
    kind = mf.media_type(doc, desc.get("mediaType", ""))
    if kind in mf.INDEXES:
        if depth > 2:
            raise LoadError(f"{path}: indexes nested too deep")
        return _plan_manifest(src, mf.pick_platform(doc, path), refs, flat, depth + 1)
    if kind not in mf.MANIFESTS:
        raise LoadError(f"{path}: unsupported manifest type {kind!r}")
    cfg_desc = doc.get("config") or {}
    cfg_digest = mf.check_digest(cfg_desc.get("digest"), f"{path} config")
    config = src.read_verified(_blob_path(cfg_digest, flat), cfg_digest)
    diff_ids = mf.diff_ids_of(mf.load_json(config, cfg_digest), cfg_digest)
    descs = doc.get("layers") or []
    if len(descs) != len(diff_ids):
        raise LoadError(f"{path}: {len(descs)} layers but the config lists "
                        f"{len(diff_ids)} diff_ids")
    layers = []
    for d, diff_id in zip(descs, diff_ids, strict=True):
        ld = mf.check_digest((d or {}).get("digest"), f"{path} layer")
        layers.append(PlannedLayer(_blob_path(ld, flat), ld, diff_id))
    return Planned(config, layers, refs)


def _oci_name(desc: dict[str, Any]) -> list[str]:
    """A full reference from the annotations, if any (a bare tag names nothing)."""
    ann = desc.get("annotations") or {}
    for key in (mf.ANNOTATION_IMAGE_NAME, mf.ANNOTATION_REF_NAME):
        name = ann.get(key)
        if isinstance(name, str) and ("/" in name or ":" in name):
            try:
                return [":".join(parse_ref(name))]
            except InvalidArgument:
                continue
    return []


def plan(src: Source) -> list[Planned]:
    """Reads every manifest and config, checks what can be checked without layer data."""
    if src.exists("manifest.json"):
        doc = _json(src, "manifest.json")
        if isinstance(doc, dict) and doc.get("schemaVersion") == 2:  # skopeo dir:
            with src.open("manifest.json") as f:
                raw = f.read(8 << 20)
            import hashlib

            desc = {"digest": "sha256:" + hashlib.sha256(raw).hexdigest()}
            return [_plan_manifest(_WithManifest(src, desc["digest"]), desc, [], flat=True)]
        return _plan_docker(src, doc)
    if src.exists("index.json"):
        if not src.exists("oci-layout"):
            raise LoadError("index.json without oci-layout: not an OCI image layout")
        index = _json(src, "index.json")
        descs = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(descs, list) or not descs:
            raise LoadError("index.json: no manifests")
        return [_plan_manifest(src, d, _oci_name(d), flat=False) for d in descs
                if isinstance(d, dict)]
    raise LoadError("<archive>: no manifest.json or index.json: not an image archive")


class _WithManifest(Source):
    """skopeo's dir: layout keeps the manifest as manifest.json, not under its digest."""

    def __init__(self, src: Source, digest: str) -> None:
        self._src, self._hex = src, digest.removeprefix("sha256:")

    def _map(self, path: str) -> str:
        return "manifest.json" if path == self._hex else path

    def exists(self, path: str) -> bool:
        return self._src.exists(self._map(path))

    def size(self, path: str) -> int:
        return self._src.size(self._map(path))

    def open(self, path: str):
        return self._src.open(self._map(path))


def _stage(store: ImageStore, src: Source, layer: PlannedLayer,
           progress: Progress) -> StagedLayer:
    key = layer.diff_id[7:19]
    total = src.size(layer.path)
    with src.open(layer.path) as f:
        reader = DigestReader(f, lambda n: progress.update(key, "Loading layer", n, total))
        try:
            staged = store.stage_layer(reader, name=layer.path)
        except UnsafeArchive as e:
            raise LoadError(f"{layer.path}: {e}") from None
        try:
            reader.drain()
            if layer.digest and reader.digest != layer.digest:
                raise LoadError(f"{layer.path}: content does not match digest {layer.digest} "
                                f"(got {reader.digest})")
            if staged.diff_id != layer.diff_id:
                raise LoadError(f"{layer.path}: uncompressed content {staged.diff_id} does not "
                                f"match the config's diff_id {layer.diff_id}")
        except BaseException:
            staged.discard()
            raise
    progress.status(key, "Loading layer " + (f"{total / 1e6:.3g}MB" if total else "done"))
    return staged


def load(store: ImageStore, src: Source, progress: Progress | None = None) -> list[str]:
    """Loads every image of ``src``; returns docker's "Loaded image: ..." lines."""
    progress = progress or Progress(enabled=False)
    try:
        images = plan(src)
    except LoadError:
        raise
    except InvalidArgument as e:  # manifest helpers' errors: still a bad archive
        raise LoadError(str(e)) from None
    staged: dict[str, StagedLayer] = {}
    try:
        for img in images:
            for layer in img.layers:
                if layer.diff_id not in staged and not store.has_layer(layer.diff_id):
                    staged[layer.diff_id] = _stage(store, src, layer, progress)
        lines = []
        for img in images:
            image_id = store.commit(img.config, [staged[lay.diff_id] for lay in img.layers
                                                 if lay.diff_id in staged], img.refs)
            lines += [f"Loaded image: {r}" for r in img.refs] or [f"Loaded image ID: {image_id}"]
        return lines
    finally:
        for s in staged.values():
            s.discard()


def open_source(path: str, spool_dir: str) -> Source:
    """A directory, a tar file, or ``-`` (stdin, spooled: the format needs random access)."""
    import sys
    import tempfile

    from runtime.images.sources import DirSource, TarSource

    if path != "-" and os.path.isdir(path):
        return DirSource(path)
    if path == "-":
        os.makedirs(spool_dir, exist_ok=True)
        f = tempfile.TemporaryFile(dir=spool_dir, prefix="load-")
        while chunk := sys.stdin.buffer.read(1 << 20):
            f.write(chunk)
        f.seek(0)
    else:
        try:
            f = open(path, "rb")
        except OSError as e:
            raise LoadError(f"open {path}: {e.strerror.lower()}") from None
    return TarSource(f)
