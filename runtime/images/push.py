"""``box push``: each layer is reused if the repository has it (HEAD), mounted from another
repository of the same registry that we know holds it, or else gzip'd from the layer's
rebuilt tarball and uploaded in chunks that resume from the registry's reported offset
after an interruption. Then the config and a Docker v2 schema 2 manifest (OCI when a
layer is zstd).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtime.errors import InvalidArgument, NotFound
from runtime.images import manifest as mf
from runtime.images.progress import Progress
from runtime.images.pull import PARALLEL, Remote, client_for, parse_remote
from runtime.images.registry import Client, RegistryError
from runtime.images.store import ImageStore
from runtime.images.tarsplit import iter_tarball

DEFAULT_CHUNK = 5 << 20
_RETRIES = 5
_DOCKER_TYPES = {"gzip": mf.DOCKER_LAYER_GZIP, "tar": mf.DOCKER_LAYER}
_OCI_TYPES = {"gzip": mf.OCI_LAYER_GZIP, "zstd": mf.OCI_LAYER_ZSTD, "tar": mf.OCI_LAYER}


def _compress(store: ImageStore, diff_id: str, tmp_dir: str) -> tuple[str, str, int]:
    """(temp file, digest, size) of the layer tarball gzip'd; the tarball is checked
    against the diff_id on the way. Deterministic (mtime 0), so pushing the same layer
    again gives the same blob."""
    fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="push-")
    try:
        raw = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
                for chunk in iter_tarball(store.layer_dir(diff_id), store.split_path(diff_id)):
                    raw.update(chunk)
                    gz.write(chunk)
        if "sha256:" + raw.hexdigest() != diff_id:
            raise RegistryError(f"layer {diff_id}: rebuilt tarball does not match its diff_id")
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
        return path, "sha256:" + sha.hexdigest(), os.path.getsize(path)
    except BaseException:
        os.unlink(path)
        raise


def upload_blob(client: Client, repo: str, path: str, digest: str, chunk_size: int,
                progress: Progress, key: str) -> int:
    """Chunked PATCH upload of the file at ``path``; returns how many times it resumed.

    After a failed chunk the session's status says how much the registry holds, and the
    upload goes on from there; a session the registry dropped is started again.
    """
    size = os.path.getsize(path)
    _, location = client.start_upload(repo)
    offset = resumed = 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            data = f.read(chunk_size)
            try:
                location = client.patch_chunk(location, offset, data)
                offset += len(data)
                progress.update(key, "Pushing", offset, size)
                continue
            except (OSError, http.client.HTTPException, RegistryError) as e:
                resumed += 1
                if resumed > _RETRIES:
                    raise RegistryError(f"upload of {digest} to {repo} failed: {e}") from None
            time.sleep(0.2 * resumed)
            try:
                status = client.upload_status(location)
            except (OSError, http.client.HTTPException):
                status = None
            if status is None:  # the registry dropped the session: start over
                _, location = client.start_upload(repo)
                offset = 0
            else:
                offset, location = status
            progress.status(key, f"Resuming at {offset}")
    client.finish_upload(location, digest)
    return resumed


def _push_layer(store: ImageStore, client: Client, remote: Remote, diff_id: str,
                chunk_size: int, progress: Progress) -> dict[str, Any]:
    """The layer's descriptor in the target repository, by the cheapest way available."""
    key = diff_id[7:19]
    here = f"{remote.domain}/{remote.path}"
    known = {d: i for d, i in (store.layer_meta(diff_id).get("compressed") or {}).items()
             if i.get("compression")}

    def done(digest: str, info: dict[str, Any], text: str) -> dict[str, Any]:
        store.record_compressed(diff_id, digest, {**info, "sources": [here]})
        progress.status(key, text)
        return {"digest": digest, "size": int(info["size"]), "compression": info["compression"]}

    for digest, info in known.items():
        if client.has_blob(remote.path, digest):
            return done(digest, info, "Layer already exists")
    for digest, info in known.items():
        for src in info.get("sources") or []:
            domain, _, path = src.partition("/")
            if domain != remote.domain or path == remote.path:
                continue
            mounted, location = client.start_upload(remote.path, digest, path)
            if mounted:
                return done(digest, info, f"Mounted from {path}")
            if location:  # the registry offered an upload instead: not needed
                try:
                    client.request("DELETE", location)
                except (OSError, http.client.HTTPException):
                    pass
    progress.status(key, "Preparing")
    tmp_dir = os.path.join(store.dir, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    path, digest, size = _compress(store, diff_id, tmp_dir)
    try:
        info = {"size": size, "compression": "gzip"}
        if client.has_blob(remote.path, digest):
            return done(digest, info, "Layer already exists")
        upload_blob(client, remote.path, path, digest, chunk_size, progress, key)
        return done(digest, info, "Pushed")
    finally:
        os.unlink(path)


def push(store: ImageStore, text: str, insecure: list[str], progress: Progress,
         chunk_size: int = DEFAULT_CHUNK) -> str:
    """Pushes ``text`` (name[:tag]); returns the manifest digest."""
    remote = parse_remote(text)
    if remote.digest:
        raise InvalidArgument(f"cannot push a digest reference: {text}")
    try:
        img = store.resolve(f"{remote.name}:{remote.tag}")
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {remote.name}") from None
    progress.message(f"The push refers to repository [{remote.domain}/{remote.path}]")
    sources = {s.partition("/")[2] for d in img.diff_ids
               for i in (store.layer_meta(d).get("compressed") or {}).values()
               for s in i.get("sources") or [] if s.partition("/")[0] == remote.domain}
    extra = tuple(f"repository:{p}:pull" for p in sorted(sources - {remote.path}))
    client = client_for(remote, "pull,push", insecure, extra)
    unique = list(dict.fromkeys(img.diff_ids))
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {d: pool.submit(_push_layer, store, client, remote, d, chunk_size, progress)
                   for d in unique}
        errors, descs = [], {}
        for d, fut in futures.items():
            try:
                descs[d] = fut.result()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]
    config = store.config_bytes(img.id)
    if not client.has_blob(remote.path, img.id):
        _, location = client.start_upload(remote.path)
        client.finish_upload(location, img.id, config)
    layers = [descs[d] for d in img.diff_ids]
    oci = any(lay["compression"] not in _DOCKER_TYPES for lay in layers)
    types = _OCI_TYPES if oci else _DOCKER_TYPES
    media = mf.OCI_MANIFEST if oci else mf.DOCKER_MANIFEST
    body = mf.dumps({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": mf.OCI_CONFIG if oci else mf.DOCKER_CONFIG,
                   "size": len(config), "digest": img.id},
        "layers": [{"mediaType": types[lay["compression"]], "size": lay["size"],
                    "digest": lay["digest"]} for lay in layers],
    })
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client.put_manifest(remote.path, remote.tag, media, body)
    store.add_refs(img.id, [f"{remote.name}@{digest}"])
    progress.message(f"{remote.tag}: digest: {digest} size: {len(body)}")
    return digest
