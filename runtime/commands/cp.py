"""``box cp``: copy between the host and a container, both ways, with docker's path
rules. The container side always runs inside the container's own root (its mount
namespace, or a private overlay mount and chroot when it is stopped), so a symlink in
the container resolves inside the container; what comes out is unpacked on the host by
the image store's safe extractor."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import uuid
from pathlib import Path

from runtime.errors import BoxError, InvalidArgument, NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.security.tarwalk import NumericWalker
from runtime.state import Store


def add_cp(p: FlagParser) -> None:
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress progress output during copy. Progress output is "
                   "automatically suppressed if no terminal is attached")
    p.add_argument("src")
    p.add_argument("dst")


def _split(arg: str) -> tuple[str | None, str]:
    """``NAME:PATH`` -> (NAME, PATH); a plain (or ./-relative) path -> (None, path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def cmd_cp(paths: Paths, args: Namespace) -> int:
    src_ctr, src = _split(args.src)
    dst_ctr, dst = _split(args.dst)
    if (src_ctr is None) == (dst_ctr is None):
        raise InvalidArgument("copying between containers is not supported" if src_ctr
                              else "must specify at least one container source")
    store = Store(paths)
    ref = src_ctr or dst_ctr
    cfg = store.load(store.resolve(ref))
    from runtime.journal import container_event

    if src_ctr:
        code = _from_container(paths, cfg, src, dst, args.follow_link, args.archive)
        action = "archive-path"  # moby's containerArchivePath
    else:
        code = _to_container(paths, cfg, src, dst, args.follow_link, args.archive)
        action = "extract-to-dir"  # moby's containerExtractToDir
    if code == 0:
        container_event(paths.root, cfg, action)
    return code


def _tar_source(path: str, follow: bool) -> tuple[str, str]:
    """(directory to add from, name in the archive); ``dir/.`` copies the contents."""
    if path.endswith("/.") or path == ".":
        return path[:-2] or "/", "."
    target = os.path.realpath(path) if follow else path
    return os.path.dirname(target.rstrip("/")) or "/", os.path.basename(target.rstrip("/"))


def _write_tar(fd: int, path: str, follow: bool) -> None:
    base, name = _tar_source(path, follow)
    if not os.path.lexists(os.path.join(base, name)):
        raise NotFound(f"Could not find the file {path} in container")
    # Inside the container: numeric owners, never a name service lookup.
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tf:
        NumericWalker(tf).add(os.path.join(base, name), name)


def _from_container(paths: Paths, cfg: dict, src: str, dst: str, follow: bool,
                    archive: bool) -> int:
    from runtime.enter import enter_root
    from runtime.images.extract import extract_layer
    from runtime.security.confine import run_confined

    dst_path = Path(dst)
    if dst.endswith("/") and not dst_path.is_dir():
        raise NotFound(f"destination directory {dst} does not exist")
    if not dst_path.parent.is_dir():
        raise NotFound(f"destination directory {dst_path.parent} does not exist")
    r, w = os.pipe()

    def pack() -> int:
        _write_tar(w, src, follow)
        return 0

    pid = os.fork()
    if pid == 0:  # run_confined forks the helpers itself: this child only waits
        os.close(r)
        code = 125
        try:
            code = run_confined(cfg, lambda: enter_root(paths, cfg), pack)
        finally:
            os._exit(code)
    os.close(w)
    staging = (
        dst_path.parent if not dst_path.is_dir() else dst_path
    ) / f".box-cp-{uuid.uuid4().hex[:8]}"
    try:
        with os.fdopen(r, "rb") as stream:
            try:
                extract_layer(stream, staging)
            except BoxError:
                _, status = os.waitpid(pid, 0)
                pid = 0
                if os.waitstatus_to_exitcode(status) != 0:
                    raise NotFound(f"Could not find the file {src} in container "
                                   f"{cfg['Name'].lstrip('/')}") from None
                raise
        if pid:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise BoxError(f"copying {src} out of the container failed")
        if not archive:  # docker: the copy belongs to whoever ran `cp`, unless -a
            _chown_tree(staging, os.getuid(), os.getgid())
        entries = os.listdir(staging)
        if src.endswith("/."):
            target = dst_path
            target.mkdir(exist_ok=True)
            for entry in entries:
                _move(staging / entry, target / entry)
        else:
            (entry,) = entries
            target = dst_path / entry if dst_path.is_dir() else dst_path
            _move(staging / entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return 0


def _move(src: Path, dst: Path) -> None:
    """Replace files, merge directories, as ``docker cp`` does."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        for entry in os.listdir(src):
            _move(src / entry, dst / entry)
        return
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(src, dst)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.lchown(os.path.join(dirpath, name), uid, gid)


def _to_container(paths: Paths, cfg: dict, src: str, dst: str, follow: bool,
                  archive: bool) -> int:
    from runtime.enter import enter_root
    from runtime.security.confine import run_confined

    if not os.path.lexists(src.removesuffix("/.")):
        raise NotFound(f"stat {src}: no such file or directory")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            _write_tar(w, src, follow)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    src_is_dir = os.path.isdir(src)

    def unpack() -> int:
        with os.fdopen(r, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
            dest = dst
            if dest.endswith("/") and not os.path.isdir(dest):
                raise NotFound(f"destination directory {dst} does not exist")
            if not os.path.isdir(os.path.dirname(dest.rstrip("/")) or "/"):
                raise NotFound(f"destination directory {os.path.dirname(dest)} does not exist")
            into_dir = os.path.isdir(dest)
            for member in tf:
                name = member.name
                if src.endswith("/."):
                    out = os.path.join(dest, name)
                elif into_dir:
                    out = os.path.join(dest, name)
                else:  # rename: the top entry becomes dest itself
                    head, _, rest = name.partition("/")
                    out = os.path.join(dest, rest) if rest else dest
                if not src_is_dir and os.path.isdir(out) and member.isfile():
                    raise BoxError(f"cannot overwrite directory {out} with non-directory")
                member.name = out.lstrip("/") or "."
                if not archive:  # docker: owned by root in the container, unless -a
                    member.uid = member.gid = 0
                # We are inside the container's root: nothing here can reach the host.
                with contextlib.suppress(FileExistsError, IsADirectoryError):
                    tf.extract(member, "/", set_attrs=True, numeric_owner=True,
                               filter="fully_trusted")
        return 0

    code = run_confined(cfg, lambda: enter_root(paths, cfg), unpack)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return code
