"""An overlayfs upper dir as an OCI layer: a 0:0 character device (overlay's whiteout)
becomes an empty ``.wh.<name>`` file, a directory with ``trusted.overlay.opaque=y``
gets a ``.wh..wh..opq`` entry, and the tar goes through the image store's own staging
(the safe extractor, the tar-split), so the layer is stored once, as pulled layers are.

Mount points the runtime made in the container's root (``/proc``, ``/sys``, ``/dev``,
the ``/etc`` files it binds, RUN ``--mount`` targets) are left out when they are the
empty placeholders it created, as Docker's init layer keeps them out of a commit."""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import tempfile

from runtime.images.extract import OPAQUE_MARKER, WHITEOUT_PREFIX
from runtime.images.layerfs import OPAQUE_XATTR
from runtime.images.store import ImageStore, StagedLayer

RUNTIME_PLACEHOLDERS = ("proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def is_placeholder(path: str, st: os.stat_result) -> bool:
    if stat.S_ISDIR(st.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


class _Writer:
    def __init__(self, tf: tarfile.TarFile, skip: set[str]) -> None:
        self.tf = tf
        self.skip = skip
        self.links: dict[tuple[int, int], str] = {}

    def add_tree(self, root: str, rel: str = "") -> None:
        for name in sorted(os.listdir(os.path.join(root, rel) if rel else root)):
            self.add(root, f"{rel}/{name}" if rel else name)

    def add(self, root: str, rel: str) -> None:
        path = os.path.join(root, rel)
        st = os.lstat(path)
        if rel in self.skip and is_placeholder(path, st):
            return
        head, _, base = rel.rpartition("/")
        if is_whiteout(st):
            info = _info(f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base,
                         st)
            info.type, info.mode = tarfile.REGTYPE, 0o644
            self.tf.addfile(info)
            return
        info = _info(rel, st)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self.tf.addfile(info)
            if is_opaque(path):
                marker = _info(f"{rel}/{OPAQUE_MARKER}", st)
                marker.type, marker.mode = tarfile.REGTYPE, 0o644
                self.tf.addfile(marker)
            self.add_tree(root, rel)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
                self.tf.addfile(info)
                return
            if st.st_nlink > 1:
                self.links[key] = rel
            info.size = st.st_size
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                self.tf.addfile(info, f)
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            self.tf.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self.tf.addfile(info)
        # sockets and device nodes are not layer content (/dev comes from the runtime)


def write_layer_tar(upper: str, out: str, skip: set[str] | None = None) -> None:
    """The upper dir as an uncompressed OCI layer tar at ``out``."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        _Writer(tf, set(RUNTIME_PLACEHOLDERS) | (skip or set())).add_tree(upper)


def stage_upper(store: ImageStore, upper: str, scratch_dir: str,
                skip: set[str] | None = None) -> StagedLayer:
    """The upper dir staged as a layer beside the store (``commit`` moves it in)."""
    fd, tmp = tempfile.mkstemp(prefix=".layer-", suffix=".tar", dir=scratch_dir)
    os.close(fd)
    try:
        write_layer_tar(upper, tmp, skip)
        with open(tmp, "rb") as f:
            return store.stage_layer(f, "build step")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
