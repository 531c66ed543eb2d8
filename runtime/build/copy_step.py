"""COPY and ADD: the files are written into an overlay of the stage's image (in a
private mount namespace), and its upper dir becomes the step's layer, the same path RUN
takes. Destinations resolve inside the image's root (openat2 RESOLVE_IN_ROOT): a
symlink in the image cannot send a write onto the host. ADD unpacks local tarballs
with the image store's safe extractor; URLs are refused (builds have no network)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field

from runtime import syscalls as sc
from runtime.build.mounts import in_private_namespace, mount_layers, resolve_in_root
from runtime.errors import InvalidArgument
from runtime.images.extract import WHITEOUT_PREFIX
from runtime.security import inroot

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass
class Source:
    """Where files come from: a host directory (the context, a heredoc dir) or a stage's
    or image's layers (mounted in the helper). ``rels`` are the named paths in it."""

    rels: list[str]
    root: str = ""
    layer_dirs: list[str] | None = None
    keep_owner: bool = False
    skip: object = None  # a callable(rel) -> bool for .dockerignore and --exclude, or None
    parents: str | None = None  # --parents: the pivot the kept parent dirs start below


@dataclass
class CopyPlan:
    sources: list[Source]
    dest: str  # absolute in the image, WORKDIR applied; a trailing "/" kept
    chown: str | None = None
    chmod: int | None = None
    unpack: bool = False  # ADD: local tarballs are extracted
    many: bool = False  # several sources or a wildcard: dest must be a directory
    lowers: list[str] = field(default_factory=list)  # the stage's layers, top-most first
    link: bool = False  # --link: written on an empty root, the stage only read for --chown


def _read_in_root(root_fd: int, path: str) -> str:
    try:
        fd = sc.openat2(root_fd, path.lstrip("/"), os.O_RDONLY | os.O_CLOEXEC, _RESOLVE)
    except OSError:
        return ""
    with os.fdopen(fd) as f:
        return f.read()


def _lookup(root_fd: int, db: str, name: str) -> int:
    if name.isdigit():
        return int(name)
    for line in _read_in_root(root_fd, db).splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    what = "user" if db.endswith("passwd") else "group"
    raise InvalidArgument(f"unable to find {what} {name}: no matching entries in {db[5:]} file")


def owner(root_fd: int, chown: str) -> tuple[int, int]:
    """``--chown user[:group]`` by number or by the image's /etc/passwd and /etc/group."""
    user, _, group = chown.partition(":")
    uid = _lookup(root_fd, "/etc/passwd", user)
    if group:
        return uid, _lookup(root_fd, "/etc/group", group)
    if user.isdigit():
        return uid, uid
    for line in _read_in_root(root_fd, "/etc/passwd").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == user and fields[3].isdigit():
            return uid, int(fields[3])
    return uid, uid


def is_archive(path: str) -> bool:
    """A (compressed) tar, as ADD decides: its first header parses."""
    from runtime.images.extract import open_decompressed

    try:
        with open(path, "rb") as raw:
            head = open_decompressed(raw).read(512)
        tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
        return True
    except Exception:  # anything that is not a tar header: copied as a plain file
        return False


class _Copier:
    def __init__(self, owner_ids: tuple[int, int] | None, chmod: int | None) -> None:
        self.owner_ids, self.chmod = owner_ids, chmod

    def _meta(self, fd_or_name: int | str, st: os.stat_result, keep_owner: bool,
              dir_fd: int | None = None) -> None:
        uid, gid = self.owner_ids or ((st.st_uid, st.st_gid) if keep_owner else (0, 0))
        mode = self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)
        if isinstance(fd_or_name, int):
            os.fchown(fd_or_name, uid, gid)
            os.fchmod(fd_or_name, mode)
            os.utime(fd_or_name, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            os.chown(fd_or_name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            os.utime(fd_or_name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd,
                     follow_symlinks=False)

    def _make_room(self, pfd: int, name: str, is_dir: bool) -> bool:
        """True when a directory already stands there and ``is_dir``: merge into it."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if is_dir:
                return True
            fd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=pfd)
            try:
                if os.listdir(fd):
                    raise InvalidArgument(f"cannot replace the directory {name!r} with a file")
            finally:
                os.close(fd)
            os.rmdir(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)
        return False

    def copy(self, src: str, pfd: int, name: str, keep_owner: bool, skip: object,
             rel: str) -> None:
        """``src`` (a host path, not followed) as ``name`` in the directory ``pfd``."""
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            self._copy_dir(src, pfd, name, st, keep_owner, skip, rel)
            return
        self._make_room(pfd, name, False)
        if stat.S_ISREG(mode):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            out = os.open(name, flags, 0o600, dir_fd=pfd)
            try:
                with open(src, "rb") as f, os.fdopen(os.dup(out), "wb") as w:
                    shutil.copyfileobj(f, w, 1 << 20)
                self._meta(out, st, keep_owner)
            finally:
                os.close(out)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), name, dir_fd=pfd)
            self._meta(name, st, keep_owner, dir_fd=pfd)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=pfd)
            self._meta(name, st, keep_owner, dir_fd=pfd)
            os.chmod(name, self.chmod or stat.S_IMODE(mode), dir_fd=pfd)
        # sockets and device nodes (an extracted whiteout among them) are not copied

    def copy_children(self, src: str, fd: int, keep_owner: bool, skip: object,
                      rel: str) -> None:
        for child in sorted(os.listdir(src)):
            crel = f"{rel}/{child}" if rel else child
            if callable(skip) and skip(crel):
                path = os.path.join(src, child)
                sub_st = os.lstat(path)
                if stat.S_ISDIR(sub_st.st_mode) and getattr(skip, "descend", False):
                    # an excluded directory with re-included children: only those come
                    self._copy_dir(path, fd, child, sub_st, keep_owner, skip, crel)
                continue
            self.copy(os.path.join(src, child), fd, child, keep_owner, skip, crel)

    def _copy_dir(self, src: str, pfd: int, name: str, st: os.stat_result,
                  keep_owner: bool, skip: object, rel: str) -> None:
        """A directory merged into one already there (keeping its metadata) or made new."""
        merged = self._make_room(pfd, name, True)
        if not merged:
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=pfd)
        try:
            self.copy_children(src, fd, keep_owner, skip, rel)
            if not merged:
                self._meta(fd, st, keep_owner)
        finally:
            os.close(fd)


def _dest_dir(root_fd: int, path: str, owner: tuple[int, int] | None) -> int:
    fd = inroot.ensure_in_root(root_fd, path, directory=True, owner=owner)
    try:
        return os.open(inroot.fd_path(fd), _DIR)
    finally:
        os.close(fd)


def _apply(plan: CopyPlan, work: str) -> None:
    """In the helper: mount the overlay, then copy every source to the destination."""
    mnt, upper, wdir = (os.path.join(work, n) for n in ("mnt", "upper", "work"))
    empty = os.path.join(work, "empty")
    for d in (mnt, upper, wdir, empty):
        os.makedirs(d, exist_ok=True)
    lowers = ":".join((plan.lowers if not plan.link else []) or [empty])
    sc.mount("overlay", mnt, "overlay", 0, f"lowerdir={lowers},upperdir={upper},workdir={wdir}")
    root_fd = os.open(mnt, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    ids = _owner_ids(plan, work, root_fd) if plan.chown else None
    copier = _Copier(ids, plan.chmod)
    dest = plan.dest
    to_dir = dest.endswith("/") or plan.many
    for n, source in enumerate(plan.sources):
        root = source.root
        if source.layer_dirs is not None:
            root = os.path.join(work, f"src{n}")
            mount_layers(source.layer_dirs, root, empty)
        for rel in source.rels:
            src = resolve_in_root(root, rel)
            st = os.stat(src)
            if source.parents is not None:
                _copy_with_parents(copier, root_fd, root, source, rel, src, st, dest)
            elif stat.S_ISDIR(st.st_mode):
                fd = _dest_dir(root_fd, dest, copier.owner_ids)
                try:
                    copier.copy_children(src, fd, source.keep_owner, source.skip, rel)
                finally:
                    os.close(fd)
            elif plan.unpack and is_archive(src):
                _unpack(src, root_fd, dest, copier, work, rel)
            else:
                _copy_file(copier, root_fd, src, dest, to_dir, source, rel)


def _owner_ids(plan: CopyPlan, work: str, root_fd: int) -> tuple[int, int]:
    """``--chown`` names looked up in the stage's /etc/passwd and /etc/group (with
    ``--link`` the destination root is empty, so the stage is mounted to read them)."""
    assert plan.chown is not None
    if not plan.link or not plan.lowers:
        return owner(root_fd, plan.chown)
    stage = os.path.join(work, "stage")
    mount_layers(plan.lowers, stage, os.path.join(work, "empty"))
    fd = os.open(stage, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return owner(fd, plan.chown)
    finally:
        os.close(fd)


def _copy_with_parents(copier: _Copier, root_fd: int, root: str, source: Source, rel: str,
                       src: str, st: os.stat_result, dest: str) -> None:
    """``COPY --parents``: ``rel`` lands at ``dest/<rel below the pivot>``, the parent
    directories between made with the source directories' metadata (dockerfile 1.7)."""
    pivot = source.parents or ""
    sub = rel[len(pivot):].strip("/") if rel.startswith(pivot) else rel
    parts = [p for p in sub.split("/") if p]
    dirs = parts if stat.S_ISDIR(st.st_mode) else parts[:-1]
    fd = _dest_dir(root_fd, dest, copier.owner_ids)
    try:
        for i, name in enumerate(dirs):
            src_dir = os.path.join(root, pivot, *parts[:i + 1])
            created = not copier._make_room(fd, name, True)
            if created:
                os.mkdir(name, 0o700, dir_fd=fd)
            child = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
            if created:
                copier._meta(fd, os.stat(src_dir), source.keep_owner)
        if stat.S_ISDIR(st.st_mode):
            copier.copy_children(src, fd, source.keep_owner, source.skip, rel)
        else:
            copier.copy(src, fd, parts[-1], source.keep_owner, None, rel)
    finally:
        os.close(fd)


def _copy_file(copier: _Copier, root_fd: int, src: str, dest: str, to_dir: bool,
               source: Source, rel: str) -> None:
    target = dest
    if not to_dir:
        try:
            fd = sc.openat2(root_fd, dest.strip("/") or ".", os.O_PATH | os.O_DIRECTORY |
                            os.O_CLOEXEC, _RESOLVE)
            os.close(fd)
            to_dir = True
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
    if to_dir:
        target = dest.rstrip("/") + "/" + os.path.basename(rel.rstrip("/"))
    parent, _, name = target.rstrip("/").rpartition("/")
    pfd = _dest_dir(root_fd, parent or "/", copier.owner_ids)
    try:
        copier.copy(src, pfd, name, source.keep_owner, None, rel)
    finally:
        os.close(pfd)


def _whiteout_entry(src: str) -> str:
    """The first archive entry named like a layer whiteout (``.wh.*``), or ""."""
    from runtime.images.extract import open_decompressed

    with open(src, "rb") as raw, tarfile.open(fileobj=open_decompressed(raw), mode="r|") as tf:
        for member in tf:
            if os.path.basename(member.name.rstrip("/")).startswith(WHITEOUT_PREFIX):
                return member.name
    return ""


def _unpack(src: str, root_fd: int, dest: str, copier: _Copier, work: str, rel: str) -> None:
    """ADD of a local tarball, as BuildKit unpacks one: extracted safely beside, then
    merged into ``dest``; ``--chown`` overrides every entry's owner, ``--chmod`` does
    not touch the extracted modes. BuildKit extracts with no whiteout conversion, so a
    ``.wh.`` entry would be a plain file locally but a whiteout once the layer is
    pushed: such an archive is refused rather than given either meaning."""
    from runtime.images.extract import extract_layer

    entry = _whiteout_entry(src)
    if entry:
        raise InvalidArgument(f"ADD {rel}: archive entry {entry!r} is named like a layer "
                              f"whiteout ({WHITEOUT_PREFIX}*), which an image layer cannot "
                              "hold as a file")
    out = os.path.join(work, f"unpack-{os.urandom(4).hex()}")
    with open(src, "rb") as f:
        extract_layer(f, out)
    fd = _dest_dir(root_fd, dest, copier.owner_ids)
    try:
        _Copier(copier.owner_ids, None).copy_children(out, fd, True, None, "")
    finally:
        os.close(fd)
        shutil.rmtree(out, ignore_errors=True)


def apply_copy(plan: CopyPlan, work: str) -> str:
    """Runs the copy in a private mount namespace; returns the upper dir it filled."""
    in_private_namespace(lambda: _apply(plan, work))
    return os.path.join(work, "upper")
