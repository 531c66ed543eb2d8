"""The image store: content-addressed like Docker's, so OCI load/pull/save fit in later.

Layout under ``<root>/image``::

    blobs/sha256/<hex>        image config JSON; the image ID is its sha256
    layers/<hex>/             a layer extracted once, named by its diff_id
    layers/<hex>.json         {"diff_id": ..., "size": ...}
    repositories.json         {"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}
    .lock                     fcntl lock: shared for reads, exclusive for writes

Every file is written to a temp name and renamed; a layer is extracted outside the lock
(into a staging dir) and only renamed into place under it, so concurrent imports of the
same tarball end with one layer dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.timeutil import rfc3339nano

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import IO, Any

DEFAULT_TAG = "latest"
# Docker's reference grammar (distribution/reference), enough to refuse what Docker refuses.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
_NAME_RE = re.compile(rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_HEX_RE = re.compile(r"^[a-f0-9]{1,64}$")
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Env": [], "Cmd": [], "Entrypoint": [], "WorkingDir": "", "User": "",
    "ExposedPorts": {}, "Labels": {}, "StopSignal": "", "Volumes": {},
}
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def parse_ref(text: str) -> tuple[str, str]:
    """``busybox`` -> ``("busybox", "latest")``; refuses what Docker calls an invalid reference."""
    ref = text.strip()
    if "@" in ref:
        raise InvalidArgument(f"invalid reference format: digests are not supported here: {text!r}")
    name, tag = ref, DEFAULT_TAG
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:  # a colon after the last slash starts the tag (not a registry port)
        name, tag = ref[:colon], ref[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: invalid tag in {text!r}")
    if not name or len(name) > 255 or not _NAME_RE.match(name):
        if name.lower() != name and _NAME_RE.match(name.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name must be lowercase: {text!r}"
            )
        raise InvalidArgument(f"invalid reference format: {text!r}")
    if re.fullmatch(r"[a-f0-9]{64}", name):
        raise InvalidArgument(
            f"invalid repository name {text!r}: cannot specify 64-byte hexadecimal strings"
        )
    # Docker's familiar form: docker.io/library/busybox and library/busybox are "busybox"
    if name.startswith(("docker.io/", "index.docker.io/")):
        name = name.split("/", 1)[1]
    if name.startswith("library/") and name.count("/") == 1:
        name = name.removeprefix("library/")
    return name, tag


DEFAULT_MAX_BYTES = 20 * 1024**3  # uncompressed bytes one layer may hold (bomb cap)


class Image(namedtuple("Image", "id repo_tags config created layer_dirs size diff_ids "
                                "architecture os", defaults=[(), "", "linux"])):
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

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        # Plain strings, not pathlib (~3 ms of import on the `box run` path).
        self.dir = os.path.join(os.fspath(root), "image")
        self.blobs = os.path.join(self.dir, "blobs", "sha256")
        self.layers = os.path.join(self.dir, "layers")
        self.repos_file = os.path.join(self.dir, "repositories.json")
        self.max_bytes = max_bytes

    # ---- locking and small files ------------------------------------------------------

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        for d in (self.blobs, self.layers):
            os.makedirs(d, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _write_atomic(path: str, data: bytes) -> None:
        head, name = os.path.split(path)
        tmp = os.path.join(head, f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _load_repos(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(_read_bytes(self.repos_file))
        except FileNotFoundError:
            return {}
        return data.get("Repositories") or {}

    def _save_repos(self, repos: dict[str, dict[str, str]]) -> None:
        repos = {name: tags for name, tags in sorted(repos.items()) if tags}
        self._write_atomic(self.repos_file, json.dumps({"Repositories": repos}).encode())

    def _image_ids(self) -> list[str]:
        return ["sha256:" + n for n in os.listdir(self.blobs) if _HEX_RE.match(n)]

    def _config_blob(self, image_id: str) -> dict[str, Any]:
        return json.loads(_read_bytes(os.path.join(self.blobs, image_id.removeprefix("sha256:"))))

    # ---- lookups ----------------------------------------------------------------------

    def _lookup(self, text: str, repos: dict[str, dict[str, str]]) -> tuple[str, bool] | None:
        """(image id, found by ID) for a name[:tag], a full ID or a unique ID prefix."""
        try:
            name, tag = parse_ref(text)
        except InvalidArgument:
            name = ""
        if name:
            image_id = repos.get(name, {}).get(f"{name}:{tag}")
            if image_id:
                return image_id, False
        hexpart = text.removeprefix("sha256:")
        if not _HEX_RE.match(hexpart):
            return None
        matches = [i for i in self._image_ids() if i[7:].startswith(hexpart)]
        if len(matches) > 1:
            raise InvalidArgument(f"image ID prefix {text!r} is ambiguous")
        return (matches[0], True) if matches else None

    @staticmethod
    def _tags_of(image_id: str, repos: dict[str, dict[str, str]]) -> list[str]:
        return sorted(t for tags in repos.values() for t, i in tags.items() if i == image_id)

    def _image(self, image_id: str, repos: dict[str, dict[str, str]]) -> Image:
        blob = self._config_blob(image_id)
        diff_ids = list(blob.get("rootfs", {}).get("diff_ids") or [])
        size = 0
        for d in diff_ids:
            meta = json.loads(_read_bytes(os.path.join(self.layers, f"{d.removeprefix('sha256:')}.json")))
            size += int(meta.get("size", 0))
        config = dict(_CONFIG_DEFAULTS)
        config.update({k: v for k, v in (blob.get("config") or {}).items() if v is not None})
        return Image(
            id=image_id,
            repo_tags=self._tags_of(image_id, repos),
            config=config,
            created=blob.get("created", ""),
            layer_dirs=[os.path.join(self.layers, d.removeprefix("sha256:"))
                        for d in reversed(diff_ids)],
            size=size,
            diff_ids=diff_ids,
            architecture=blob.get("architecture", ""),
            os=blob.get("os", "linux"),
        )

    def resolve(self, ref_or_id_prefix: str) -> Image:
        """The image ``box run``/``create`` would use; NotFound with Docker's run wording."""
        with self._locked(exclusive=False):
            repos = self._load_repos()
            found = self._lookup(ref_or_id_prefix, repos)
            if found is None:
                raise NotFound(f"Unable to find image '{_display(ref_or_id_prefix)}' locally")
            return self._image(found[0], repos)

    def list(self) -> list[Image]:
        """Every image, dangling ones included, newest first (``box images`` order)."""
        with self._locked(exclusive=False):
            repos = self._load_repos()
            images = [self._image(i, repos) for i in self._image_ids()]
        return sorted(images, key=lambda im: (im.created, im.id), reverse=True)

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
        name, tag = parse_ref(ref)
        config = _config_from_changes(changes or {})
        os.makedirs(self.layers, exist_ok=True)
        import hashlib
        import platform
        import shutil

        from runtime.images.extract import extract_layer

        staging = os.path.join(self.layers, f".import-{os.urandom(6).hex()}")
        try:
            layer = extract_layer(fileobj, staging, max_bytes=self.max_bytes)
            created = rfc3339nano()
            blob = json.dumps({
                "architecture": _GOARCH.get(platform.machine(), platform.machine()),
                "os": "linux",
                "created": created,
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": created, "comment": message or "Imported from -"}],
            }, separators=(",", ":")).encode()
            image_id = "sha256:" + hashlib.sha256(blob).hexdigest()
            with self._locked(exclusive=True):
                hexid = layer.diff_id.removeprefix("sha256:")
                if os.path.exists(os.path.join(self.layers, hexid)):
                    shutil.rmtree(staging)  # another image already has this layer
                else:
                    os.rename(staging, os.path.join(self.layers, hexid))
                meta = json.dumps({"diff_id": layer.diff_id, "size": layer.size}).encode()
                self._write_atomic(os.path.join(self.layers, f"{hexid}.json"), meta)
                self._write_atomic(os.path.join(self.blobs, image_id[7:]), blob)
                repos = self._load_repos()
                repos.setdefault(name, {})[f"{name}:{tag}"] = image_id
                self._save_repos(repos)
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return image_id

    def tag(self, src: str, dst: str) -> None:
        """``box tag``: points ``dst`` at the image ``src`` names (moving it if it existed)."""
        name, tag = parse_ref(dst)
        with self._locked(exclusive=True):
            repos = self._load_repos()
            found = self._lookup(src, repos)
            if found is None:
                raise NotFound(f"Error: No such image: {src}")
            repos.setdefault(name, {})[f"{name}:{tag}"] = found[0]
            self._save_repos(repos)

    def remove(
        self, ref: str, force: bool, in_use: Callable[[str], list[str]]
    ) -> list[str]:
        """``box rmi``: the lines Docker prints ("Untagged: ...", "Deleted: sha256:...").

        By name: untags; the image goes with its last tag. By ID: all its tags go, which
        needs ``force`` when there are several. An image a container uses (``in_use``
        returns container IDs) is refused without ``force``; with it, only its tags go
        and the image stays (dangling) so the container's lower layers remain.
        """
        with self._locked(exclusive=True):
            repos = self._load_repos()
            found = self._lookup(ref, repos)
            if found is None:
                raise NotFound(f"Error: No such image: {ref}")
            image_id, by_id = found
            short = image_id[7:19]
            tags = self._tags_of(image_id, repos)
            users = in_use(image_id)
            if by_id:
                if len(tags) > 1 and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced)"
                                   " - image is referenced in multiple repositories")
                if users and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced)"
                                   f" - image is being used by container {users[0][:12]}")
                untag = tags
            else:
                name, tag = parse_ref(ref)
                if len(tags) == 1 and users and not force:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref}" (must force)'
                        f" - container {users[0][:12]} is using its referenced image {short}"
                    )
                untag = [f"{name}:{tag}"]
            lines = [f"Untagged: {t}" for t in untag]
            for t in untag:
                repo = t.rsplit(":", 1)[0]
                repos.get(repo, {}).pop(t, None)
            self._save_repos(repos)
            if self._tags_of(image_id, repos) or users:
                return lines
            return lines + self._delete_image(image_id)

    def _delete_image(self, image_id: str) -> list[str]:
        """Drops the config blob, then every layer no other image lists. Under the lock."""
        import shutil

        diff_ids = self._config_blob(image_id).get("rootfs", {}).get("diff_ids") or []
        os.unlink(os.path.join(self.blobs, image_id[7:]))
        lines = [f"Deleted: {image_id}"]
        still_used = {d for i in self._image_ids()
                      for d in self._config_blob(i).get("rootfs", {}).get("diff_ids") or []}
        for d in reversed(diff_ids):
            if d in still_used:
                continue
            hexid = d.removeprefix("sha256:")
            shutil.rmtree(os.path.join(self.layers, hexid), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.layers, f"{hexid}.json"))
            lines.append(f"Deleted: {d}")
        return lines


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _display(text: str) -> str:
    """What Docker echoes in "Unable to find image ...": the ref with its tag made explicit."""
    try:
        name, tag = parse_ref(text)
    except InvalidArgument:
        return text
    return f"{name}:{tag}"


def _config_from_changes(changes: dict[str, Any]) -> dict[str, Any]:
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
