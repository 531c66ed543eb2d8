"""``box pull``: manifest (an index is narrowed to this platform), config, then the layers
the store lacks, three at a time, each checked against its digest and diff_id before
anything is committed. Docker v2 schema 2 and OCI manifests are both accepted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import namedtuple
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtime.errors import InvalidArgument
from runtime.images import manifest as mf
from runtime.images.credentials import Credentials
from runtime.images.layerfs import UnsafeArchive
from runtime.images.progress import Progress
from runtime.images.registry import Client, RegistryError, json_body
from runtime.images.store import ImageStore, StagedLayer, parse_ref

ACCEPT = (mf.OCI_INDEX, mf.DOCKER_LIST, mf.OCI_MANIFEST, mf.DOCKER_MANIFEST)
PARALLEL = 3
_CHUNK = 1 << 20
MAX_CONFIG = 8 << 20  # an image config is read whole

# name: familiar ("127.0.0.1:5000/team/app"); tag or digest (one of them is set)
Remote = namedtuple("Remote", "name domain path tag digest")


def parse_remote(text: str) -> Remote:
    """``[host/]path[:tag][@sha256:...]`` -> its parts; the tag defaults to latest."""
    head, _, digest = text.partition("@")
    if digest:
        mf.check_digest(digest, f"reference {text!r}")
    name, tag = parse_ref(head)  # with name:tag@digest the digest wins, as in docker
    domain, path = mf.split_domain(name)
    return Remote(name, domain, path, None if digest else tag, digest or None)


def client_for(remote: Remote, actions: str, insecure: list[str],
               extra_scopes: tuple[str, ...] = ()) -> Client:
    creds = Credentials().get(remote.domain)
    scopes = (f"repository:{remote.path}:{actions}", *extra_scopes)
    return Client(remote.domain, creds, insecure, scopes)


def _fetch_manifest(client: Client, remote: Remote) -> tuple[dict[str, Any], str, str]:
    """(image manifest, digest of what the reference names, digest of the image manifest)."""
    ref = remote.digest or remote.tag
    resp = client.get_manifest(remote.path, ref, ACCEPT)
    top = "sha256:" + hashlib.sha256(resp.body).hexdigest()
    if remote.digest and top != remote.digest:
        raise RegistryError(f"manifest {remote.path}@{remote.digest}: content has digest {top}")
    doc = json_body(resp, f"manifest {remote.path}:{ref}")
    kind = mf.media_type(doc, resp.headers.get("Content-Type", ""))
    if kind in mf.INDEXES:
        desc = mf.pick_platform(doc, f"{remote.name}:{ref}")
        digest = mf.check_digest(desc.get("digest"), "index entry")
        resp = client.get_manifest(remote.path, digest, ACCEPT)
        got = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if got != digest:
            raise RegistryError(f"manifest {remote.path}@{digest}: content has digest {got}")
        if len(resp.body) != desc.get("size", len(resp.body)):
            raise RegistryError(f"manifest {remote.path}@{digest}: {len(resp.body)} bytes, its "
                                f"index entry says {desc.get('size')!r}")
        doc = json_body(resp, f"manifest {remote.path}@{digest}")
        kind = mf.media_type(doc, resp.headers.get("Content-Type", ""))
        return doc, top, digest
    if kind not in mf.MANIFESTS:
        raise RegistryError(f"{remote.name}:{ref}: unsupported manifest type {kind!r}")
    return doc, top, top


def descriptor_size(desc: dict[str, Any], where: str) -> int:
    """A descriptor's ``size`` (required by OCI): what a blob's download is bounded by."""
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"{where} {desc.get('digest')}: descriptor has no valid size "
                              f"({size!r})")
    return size


def verified_chunks(client: Client, remote: Remote, digest: str, size: int,
                    what: str = "blob") -> Iterator[bytes]:
    """The blob's bytes as they arrive, never more than ``size``: a body that announces
    or carries more is refused at once (read stops at ``size + 1``), the digest is
    hashed as it streams and checked at the end. Each refusal is one line naming the
    digest."""
    resp = client.get_blob(remote.path, digest)
    try:
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > size:
            raise RegistryError(f"{what} {digest} of {remote.name}: the registry sends "
                                f"{length} bytes, its descriptor says {size}; refused")
        sha = hashlib.sha256()
        done = 0
        while done <= size:
            chunk = resp.read(min(_CHUNK, size + 1 - done))
            if not chunk:
                break
            done += len(chunk)
            if done > size:
                raise RegistryError(f"{what} {digest} of {remote.name}: larger than its "
                                    f"descriptor's {size} bytes; refused")
            sha.update(chunk)
            yield chunk
    finally:
        resp.close()
    if "sha256:" + sha.hexdigest() != digest or done != size:
        raise RegistryError(f"{what} {digest} of {remote.name}: downloaded content does not "
                            f"match (got sha256:{sha.hexdigest()}, {done} of {size} bytes)")


def _download(client: Client, remote: Remote, desc: dict[str, Any], tmp_dir: str,
              progress: Progress) -> str:
    """The blob in a temp file, its size and digest checked as it streams; the path."""
    digest = desc["digest"]
    total = descriptor_size(desc, f"{remote.name} layer")
    key = digest[7:19]
    fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="pull-")
    try:
        done = 0
        with os.fdopen(fd, "wb") as f:
            for chunk in verified_chunks(client, remote, digest, total):
                f.write(chunk)
                done += len(chunk)
                progress.update(key, "Downloading", done, total)
        return path
    except BaseException:
        os.unlink(path)
        raise


def _fetch_layer(store: ImageStore, client: Client, remote: Remote, desc: dict[str, Any],
                 diff_id: str, tmp_dir: str, progress: Progress) -> StagedLayer:
    path = _download(client, remote, desc, tmp_dir, progress)
    key = desc["digest"][7:19]
    try:
        progress.status(key, "Extracting")
        with open(path, "rb") as f:
            try:
                staged = store.stage_layer(f, name=desc["digest"])
            except UnsafeArchive as e:
                raise RegistryError(f"blob {desc['digest']} of {remote.name}: {e}") from None
        if staged.diff_id != diff_id:
            staged.discard()
            raise RegistryError(f"blob {desc['digest']} of {remote.name}: uncompressed content "
                                f"{staged.diff_id} does not match the config's diff_id {diff_id}")
    finally:
        os.unlink(path)
    progress.status(key, "Pull complete")
    return staged


def compression_of(media_type: str) -> str:
    if media_type.endswith("zstd"):
        return "zstd"
    return "gzip" if media_type.endswith("gzip") else "tar"


def pull(store: ImageStore, text: str, insecure: list[str], progress: Progress) -> str:
    """Pulls ``text`` into ``store``; returns the reference pulled (docker's last line)."""
    remote = parse_remote(text)
    client = client_for(remote, "pull", insecure)
    shown = remote.name + (f"@{remote.digest}" if remote.digest else f":{remote.tag}")
    progress.message(f"{remote.digest or remote.tag}: Pulling from {remote.path}")
    doc, top, _ = _fetch_manifest(client, remote)
    cfg_desc = doc.get("config") or {}
    cfg_digest = mf.check_digest(cfg_desc.get("digest"), "manifest config")
    cfg_size = descriptor_size(cfg_desc, f"{remote.name} config")
    if cfg_size > MAX_CONFIG:
        raise RegistryError(f"config {cfg_digest} of {remote.name}: {cfg_size} bytes, over "
                            f"the {MAX_CONFIG} byte limit; refused")
    config = b"".join(verified_chunks(client, remote, cfg_digest, cfg_size, "config"))
    diff_ids = mf.diff_ids_of(mf.load_json(config, cfg_digest), cfg_digest)
    descs = doc.get("layers") or []
    if len(descs) != len(diff_ids):
        raise InvalidArgument(f"{remote.name}: {len(descs)} layers but {len(diff_ids)} diff_ids")
    for d in descs:
        mf.check_digest(d.get("digest"), f"{remote.name} layer")
        descriptor_size(d, f"{remote.name} layer")
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    had = _has_image(store, image_id)
    tmp_dir = os.path.join(store.dir, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    staged: dict[str, StagedLayer] = {}
    try:
        missing = []
        for desc, diff_id in zip(descs, diff_ids, strict=True):
            if store.has_layer(diff_id) or any(diff_id == m[1] for m in missing):
                progress.status(desc["digest"][7:19], "Already exists")
            else:
                missing.append((desc, diff_id))
        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = [(d, pool.submit(_fetch_layer, store, client, remote, desc, d, tmp_dir,
                                       progress)) for desc, d in missing]
            errors = []
            for d, fut in futures:
                try:
                    staged[d] = fut.result()
                except BaseException as e:
                    errors.append(e)
            if errors:
                raise errors[0]
        source = f"{remote.domain}/{remote.path}"
        compressed = {d: {desc["digest"]: {"size": int(desc.get("size") or 0),
                                           "compression": compression_of(desc.get("mediaType", "")),
                                           "sources": [source]}}
                      for desc, d in zip(descs, diff_ids, strict=True)}
        refs = [f"{remote.name}@{top}"] + ([f"{remote.name}:{remote.tag}"] if remote.tag else [])
        store.commit(config, list(staged.values()), refs, compressed)
    finally:
        for s in staged.values():
            s.discard()
    progress.message(f"Digest: {top}")
    status = "Image is up to date for" if had else "Downloaded newer image for"
    progress.message(f"Status: {status} {shown}")
    return shown


def _has_image(store: ImageStore, image_id: str) -> bool:
    return os.path.exists(os.path.join(store.blobs, image_id[7:]))
