"""The image store: content-addressed like Docker's, so OCI load/pull/save fit in later.

Layout under ``<root>/image``::

    blobs/sha256/<hex>        image config JSON; the image ID is its sha256
    layers/<hex>/             a layer extracted once, named by its diff_id
    layers/<hex>.json         {"diff_id", "size", "tar_size", "compressed": {digest: {...}}}
    layers/<hex>.tar-split.gz what rebuilds the exact layer tarball (tarsplit.py)
    repositories.json         {"Repositories": {"busybox": {"busybox:latest": "sha256:...",
                                                            "busybox@sha256:<manifest>": ...}}}
    .lock                     fcntl lock: shared for reads, exclusive for writes

Layers are keyed by diff_id, not by chain ID as Docker does. Docker's overlay2 stores a
layer as the rootfs *difference applied on top of its parent*, so the same diff on a
different parent is a different directory (chain ID). Here each diff is extracted on
its own and overlayfs stacks them at mount time (lowerdir = the image's layers,
top-most first), so one extraction serves every parent chain and a diff shared by two
images with different bases is still stored once. The "compressed" map remembers the
registry blob digests a layer was pulled as or pushed as, so a later push can HEAD or
cross-repository-mount instead of uploading.

Every file is written to a temp name and renamed; a layer is extracted outside the lock
(into a staging dir) and only renamed into place under it, so concurrent imports of the
same tarball end with one layer dir.

Beside the store, each its own idea: ``repositories`` (the tag index and Docker's lookup
order), ``config`` (what a config blob means to the runtime, and ``box import``'s),
``remove`` (rmi's rules, dropping an image's blob and unshared layers), ``usage``
(``system df``, ``image prune``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from formats.atomicfile import write_atomic
from runtime.errors import DamagedState, NotFound
from runtime.images import repositories
from runtime.images.config import (
    config_from_changes,
    container_config,
    diff_ids_of,
    imported_blob,
    optional_str,
)
from runtime.images.reference import display, parse_ref, ref_key, ref_name
from runtime.images.repositories import HEX_RE, digests_of, tags_of
from runtime.paths import private_dir
from runtime.state import json_object

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import IO, Any


class Image(namedtuple("Image", "id repo_tags config created layer_dirs size diff_ids "
                                "architecture os repo_digests", defaults=[(), "", "linux", ()])):
    """One image as the runtime needs it to create a container.

    ``id`` "sha256:<hex>"; ``config`` the OCI "config" object, every key present;
    ``layer_dirs`` top-most first (the order overlayfs lowerdir wants); ``diff_ids``
    bottom-most first, as in rootfs. A namedtuple: `dataclasses` is slow to import.
    """

    __slots__ = ()

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


class ImageStore:
    """Images under ``<root>/image``; ``root`` is the runtime's state root (Paths.root)."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        # Plain strings, not pathlib (~3 ms of import on the `box run` path).
        self.dir = os.path.join(os.fspath(root), "image")
        self.blobs = os.path.join(self.dir, "blobs", "sha256")
        self.layers = os.path.join(self.dir, "layers")
        self.repos_file = os.path.join(self.dir, "repositories.json")
        self.max_bytes = max_bytes  # None: extract's MAX_LAYER_BYTES

    # ---- locking and small files ------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        os.makedirs(self.blobs, exist_ok=True)
        private_dir(self.layers)  # layers hold setuid files: root's alone
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _write_atomic(path: str, data: bytes) -> None:
        write_atomic(path, data, 0o666)

    def _load_repos(self) -> dict[str, dict[str, str]]:
        return repositories.load(self.repos_file)

    def _save_repos(self, repos: dict[str, dict[str, str]]) -> None:
        repositories.save(self.repos_file, repos)

    def _image_ids(self) -> list[str]:
        return ["sha256:" + n for n in os.listdir(self.blobs) if HEX_RE.match(n)]

    def _config_blob(self, image_id: str) -> dict[str, Any]:
        """The config as a dict; a blob that is not a JSON object is a damaged store."""
        path = os.path.join(self.blobs, image_id.removeprefix("sha256:"))
        blob = json_object(_read_bytes(path), path)
        if not isinstance(blob.get("rootfs"), dict):  # the one key OCI requires we rely on
            raise DamagedState(f"damaged state file {path}: 'rootfs' missing or not an object")
        return blob

    # ---- lookups ----------------------------------------------------------------------

    def _lookup(self, text: str, repos: dict[str, dict[str, str]]) -> tuple[str, bool] | None:
        """(image id, found by ID) for a name[:tag], a full ID or a unique ID prefix."""
        return repositories.lookup(text, repos, self._image_ids)

    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.layers, diff_id.removeprefix("sha256:"))

    def layer_meta(self, diff_id: str) -> dict[str, Any]:
        path = self.layer_dir(diff_id) + ".json"
        return json_object(_read_bytes(path), path)

    def split_path(self, diff_id: str) -> str:
        return self.layer_dir(diff_id) + ".tar-split.gz"

    def has_layer(self, diff_id: str) -> bool:
        return os.path.exists(self.layer_dir(diff_id) + ".json")

    def config_bytes(self, image_id: str) -> bytes:
        return _read_bytes(os.path.join(self.blobs, image_id.removeprefix("sha256:")))

    def _image(self, image_id: str, repos: dict[str, dict[str, str]]) -> Image:
        """Every field the OCI spec makes optional (created, author, config and its keys,
        history, os/architecture) may be missing or null: defaults fill them here, so
        no caller meets a None or a wrong type."""
        blob = self._config_blob(image_id)
        diff_ids = diff_ids_of(blob)
        size = 0
        for d in set(diff_ids):
            with contextlib.suppress(FileNotFoundError, DamagedState, ValueError, TypeError):
                size += int(self.layer_meta(d).get("size", 0))
        config = container_config(blob)
        return Image(
            id=image_id,
            repo_tags=tags_of(image_id, repos),
            config=config,
            created=optional_str(blob.get("created")),
            layer_dirs=[os.path.join(self.layers, d.removeprefix("sha256:"))
                        for d in reversed(diff_ids)],
            size=size,
            diff_ids=diff_ids,
            architecture=optional_str(blob.get("architecture")),
            os=optional_str(blob.get("os")) or "linux",
            repo_digests=digests_of(image_id, repos),
        )

    def resolve(self, ref_or_id_prefix: str) -> Image:
        """The image ``box run``/``create`` would use; NotFound with Docker's run wording."""
        with self._locked(exclusive=False):
            repos = self._load_repos()
            found = self._lookup(ref_or_id_prefix, repos)
            if found is None:
                raise NotFound(f"Unable to find image '{display(ref_or_id_prefix)}' locally")
            return self._image(found[0], repos)

    def list(self, report: Callable[[str], None] | None = None) -> list[Image]:
        """Every image, dangling ones included, newest first (``box images`` order).

        With ``report``, a damaged file costs only what it holds: a bad config blob
        skips its image, a bad repositories.json lists every image untagged; each is
        passed to ``report`` as one line. Without it, DamagedState is raised."""
        images = []
        with self._locked(exclusive=False):
            try:
                repos = self._load_repos()
            except DamagedState as e:
                if report is None:
                    raise
                report(str(e))
                repos = {}
            for image_id in self._image_ids():
                try:
                    images.append(self._image(image_id, repos))
                except FileNotFoundError:
                    continue  # removed while we listed
                except DamagedState as e:
                    if report is None:
                        raise
                    report(str(e))
        from runtime.timeutil import created_ns  # its 12 patterns: not on the `box run` path

        return sorted(images, key=lambda im: (created_ns(im.created) or 0, im.id), reverse=True)

    # ---- changes ----------------------------------------------------------------------

    def import_tarball(
        self, fileobj: IO[bytes], ref: str, changes: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> str:
        """``box import``: a rootfs tarball (gzip/zstd/xz/bzip2/plain) -> one-layer image ID.

        ``changes`` sets keys of the image's ``config`` (Env, Cmd, WorkingDir ...); like
        ``docker import``, Cmd is empty unless set here. ``message`` (``-m``) becomes the
        history comment, "Imported from -" without it.
        """
        parse_ref(ref)
        config = config_from_changes(changes or {})
        layer = self.stage_layer(fileobj)
        try:
            return self.commit(imported_blob(config, layer.diff_id, message), [layer], [ref])
        finally:
            layer.discard()

    def stage_layer(self, fileobj: IO[bytes], name: str = "") -> StagedLayer:
        """Extracts a layer (with its tar-split) beside the store; ``commit`` moves it in.

        ``name`` is what errors call the blob. Staging happens outside the lock, so
        slow extractions do not block ``box run``.
        """
        from runtime.images.extract import MAX_LAYER_BYTES, extract_layer

        private_dir(self.layers)
        staging = os.path.join(self.layers, f".stage-{os.urandom(6).hex()}")
        limit = MAX_LAYER_BYTES if self.max_bytes is None else self.max_bytes
        got = extract_layer(fileobj, staging, max_bytes=limit,
                            split_path=staging + ".tar-split.gz")
        return StagedLayer(got.diff_id, staging, got.size, got.tar_size, name)

    def commit(self, config_blob: bytes, staged: list[StagedLayer], refs: list[str],
               compressed: dict[str, dict[str, Any]] | None = None) -> str:
        """Adds an image: its config blob, the staged layers it still lacks, and ``refs``
        (``name:tag`` or ``name@digest``) pointing at it. Returns the image ID.

        Every diff_id of the config must be staged or already stored. ``compressed``
        maps diff_id -> {digest: {"size", "mediaType", "sources"}} to remember.
        """
        import hashlib

        diff_ids = diff_ids_of(json.loads(config_blob))
        image_id = "sha256:" + hashlib.sha256(config_blob).hexdigest()
        by_diff = {layer.diff_id: layer for layer in staged}
        with self._locked(exclusive=True):
            for d in diff_ids:
                if d not in by_diff and not self.has_layer(d):
                    raise NotFound(f"layer {d} of image {image_id} is neither given nor stored")
            self._move_in(by_diff)
            for d, extra in (compressed or {}).items():
                self._merge_compressed(d, extra)
            self._write_atomic(os.path.join(self.blobs, image_id[7:]), config_blob)
            repos = self._load_repos()
            for ref in refs:
                name = ref_name(ref)
                repos.setdefault(name, {})[ref_key(ref)] = image_id
            self._save_repos(repos)
        return image_id

    def _move_in(self, by_diff: dict[str, StagedLayer]) -> None:
        """Staged layers the store lacks renamed into place, each with its meta. Under
        the lock."""
        for d, layer in by_diff.items():
            if not self.has_layer(d):
                if os.path.exists(self.layer_dir(d)):  # a crash before its meta was written
                    import shutil

                    shutil.rmtree(self.layer_dir(d))
                os.rename(layer.dir, self.layer_dir(d))
                os.rename(layer.dir + ".tar-split.gz", self.split_path(d))
                meta = {"diff_id": d, "size": layer.size, "tar_size": layer.tar_size,
                        "compressed": {}}
                self._write_atomic(self.layer_dir(d) + ".json", json.dumps(meta).encode())

    def store_layer(self, layer: StagedLayer) -> None:
        """A layer without an image yet (a build step's): stored once, as a pulled one."""
        with self._locked(exclusive=True):
            self._move_in({layer.diff_id: layer})

    def add_refs(self, image_id: str, refs: list[str]) -> None:
        """Points ``refs`` (``name:tag`` / ``name@digest``) at an image already stored."""
        with self._locked(exclusive=True):
            if not os.path.exists(os.path.join(self.blobs, image_id.removeprefix("sha256:"))):
                raise NotFound(f"Error: No such image: {image_id}")
            repos = self._load_repos()
            for ref in refs:
                repos.setdefault(ref_name(ref), {})[ref_key(ref)] = image_id
            self._save_repos(repos)

    def record_compressed(self, diff_id: str, digest: str, info: dict[str, Any]) -> None:
        """Remembers that ``diff_id`` exists as blob ``digest`` (size, mediaType, sources)."""
        with self._locked(exclusive=True):
            self._merge_compressed(diff_id, {digest: info})

    def _merge_compressed(self, diff_id: str, extra: dict[str, dict[str, Any]]) -> None:
        meta = self.layer_meta(diff_id)
        known = meta.setdefault("compressed", {})
        for digest, info in extra.items():
            old = known.get(digest, {})
            sources = sorted(set(old.get("sources", [])) | set(info.get("sources", [])))
            known[digest] = {**old, **info, "sources": sources}
        self._write_atomic(self.layer_dir(diff_id) + ".json", json.dumps(meta).encode())

    def tag(self, src: str, dst: str) -> str:
        """``box tag``: points ``dst`` at the image ``src`` names (moving it if it existed);
        the image's id."""
        name, tag = parse_ref(dst)
        with self._locked(exclusive=True):
            repos = self._load_repos()
            found = self._lookup(src, repos)
            if found is None:
                raise NotFound(f"Error: No such image: {src}")
            repos.setdefault(name, {})[f"{name}:{tag}"] = found[0]
            self._save_repos(repos)
            return found[0]


class StagedLayer(namedtuple("StagedLayer", "diff_id dir size tar_size name")):
    """A layer extracted beside the store, not yet in it; ``discard`` removes what is left."""

    __slots__ = ()

    def discard(self) -> None:
        import shutil

        if os.path.exists(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.dir + ".tar-split.gz")


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
