"""``box save``: images as Docker >= 25 writes them, an OCI image layout that also carries
Docker's ``manifest.json`` and ``repositories`` — so ``docker load``, ``skopeo``
(``oci-archive:`` and ``docker-archive:``) and ``box load`` all read it.

Layers are stored uncompressed (blob digest = diff_id), rebuilt byte for byte from the
extracted layer and its tar-split; each is checked against its diff_id as it is written.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import IO, Any

from runtime.errors import BoxError, InvalidArgument
from runtime.images import manifest as mf
from runtime.images.store import Image, ImageStore, parse_ref
from runtime.images.tarsplit import LayerUnavailable, TarballReader


class _Checked(io.RawIOBase):
    """Hashes what tarfile copies out of the rebuilt layer."""

    def __init__(self, src: IO[bytes]) -> None:
        self._src = src
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self._src.read(len(buf))
        buf[: len(data)] = data
        self.sha.update(data)
        return len(data)


def _info(name: str, size: int, mtime: int, dir_: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = 0 if dir_ else size
    ti.mtime = mtime
    ti.mode = 0o755 if dir_ else 0o644
    ti.type = tarfile.DIRTYPE if dir_ else tarfile.REGTYPE
    return ti


def _wanted(store: ImageStore, refs: list[str]) -> list[tuple[Image, list[str]]]:
    """(image, the tags to record) per argument; an ID records no tag, as in docker."""
    out: dict[str, tuple[Image, list[str]]] = {}
    for ref in refs:
        img = store.resolve(ref)
        by_id = img.id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:"))
        tags = [] if by_id else [":".join(parse_ref(ref))]
        if img.id in out:
            out[img.id][1].extend(t for t in tags if t not in out[img.id][1])
        else:
            out[img.id] = (img, tags)
    return list(out.values())


def save(store: ImageStore, refs: list[str], out: IO[bytes]) -> None:
    """Writes the archive of ``refs`` to ``out`` (a stream: nothing is seeked)."""
    if not refs:
        raise InvalidArgument("box save needs at least one image")
    images = _wanted(store, refs)
    written: set[str] = set()
    index: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        mtime = 0
        for name in ("blobs", "blobs/sha256"):
            tf.addfile(_info(name, 0, mtime, dir_=True))

        def blob(data: bytes) -> str:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if digest not in written:
                tf.addfile(_info(f"blobs/sha256/{digest[7:]}", len(data), mtime),
                           io.BytesIO(data))
                written.add(digest)
            return digest

        for img, tags in images:
            config = store.config_bytes(img.id)
            layers = []
            for diff_id in img.diff_ids:
                size = int(store.layer_meta(diff_id).get("tar_size") or 0)
                if diff_id not in written:
                    _write_layer(tf, store, diff_id, size, mtime)
                    written.add(diff_id)
                layers.append({"mediaType": mf.OCI_LAYER, "digest": diff_id, "size": size})
            blob(config)
            manifest = mf.dumps({
                "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": mf.OCI_CONFIG, "digest": img.id, "size": len(config)},
                "layers": layers,
            })
            desc = {"mediaType": mf.OCI_MANIFEST, "digest": blob(manifest),
                    "size": len(manifest)}
            for tag in tags or [None]:
                entry = dict(desc)
                if tag:
                    name, t = tag.rsplit(":", 1)
                    full = "/".join(mf.split_domain(name))
                    entry["annotations"] = {mf.ANNOTATION_IMAGE_NAME: f"{full}:{t}",
                                            mf.ANNOTATION_REF_NAME: t}
                    repositories.setdefault(name, {})[t] = img.id[7:]
                index.append(entry)
            legacy.append({
                "Config": f"blobs/sha256/{img.id[7:]}",
                "RepoTags": tags or None,
                "Layers": [f"blobs/sha256/{d[7:]}" for d in img.diff_ids],
                "LayerSources": {lay["digest"]: lay for lay in layers},
            })
        for name, data in (
            ("index.json", mf.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                                     "manifests": index})),
            ("manifest.json", mf.dumps(legacy)),
            ("oci-layout", mf.dumps({"imageLayoutVersion": "1.0.0"})),
            ("repositories", mf.dumps(repositories)),
        ):
            tf.addfile(_info(name, len(data), mtime), io.BytesIO(data))


def _write_layer(tf: tarfile.TarFile, store: ImageStore, diff_id: str, size: int,
                 mtime: int) -> None:
    reader = _Checked(TarballReader(store.layer_dir(diff_id), store.split_path(diff_id)))
    try:
        # tarfile wants full reads; a BufferedReader gives them
        tf.addfile(_info(f"blobs/sha256/{diff_id[7:]}", size, mtime),
                   io.BufferedReader(reader, 1 << 20))
    except (OSError, tarfile.TarError) as e:
        raise LayerUnavailable(f"layer {diff_id}: cannot rebuild its tarball: {e}") from None
    if "sha256:" + reader.sha.hexdigest() != diff_id:
        raise BoxError(f"layer {diff_id}: rebuilt tarball does not match its diff_id "
                       "(was the layer directory changed?)")
