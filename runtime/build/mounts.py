"""The scratch directories and mounts a build step needs: a private tree under
``<root>/build/tmp`` (removed with everything in it), overlays of a stage's layers (a
COPY --from source, a RUN --mount from=; read-only, or writable into scratch), and the
filtered copy of the context a RUN --mount=type=bind gets."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from runtime import syscalls as sc
from runtime.errors import BoxError, InvalidArgument

if TYPE_CHECKING:
    from runtime.build.context import Context


@contextlib.contextmanager
def scratch(root: str) -> Iterator[str]:
    """A fresh private directory, removed afterwards whatever happened."""
    base = os.path.join(root, "build", "tmp")
    os.makedirs(base, mode=0o700, exist_ok=True)
    path = os.path.join(base, os.urandom(6).hex())
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mount_layers(layer_dirs: list[str], target: str, empty: str, scratch_rw: str = "") -> None:
    """An overlay of ``layer_dirs`` (top-most first) at ``target``: read-only, or with
    its writes kept in ``scratch_rw`` (thrown away with it) when that is given.
    overlayfs wants two lower dirs without an upper one, so an empty dir is put below."""
    os.makedirs(target, exist_ok=True)
    os.makedirs(empty, exist_ok=True)
    lowers = ":".join([*layer_dirs, empty])
    if not scratch_rw:
        sc.mount("overlay", target, "overlay", sc.MS_RDONLY, f"lowerdir={lowers}")
        return
    upper, work = os.path.join(scratch_rw, "upper"), os.path.join(scratch_rw, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    sc.mount("overlay", target, "overlay", 0, f"lowerdir={lowers},upperdir={upper},workdir={work}")


def resolve_in_root(root: str, rel: str) -> str:
    """The host path of ``rel`` in ``root``, its symlinks followed inside ``root``."""
    if not rel.strip("/"):
        return root
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = sc.openat2(root_fd, rel.strip("/"), os.O_PATH | os.O_CLOEXEC,
                        sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidArgument(f"file not found: stat {rel}: file does not exist") from None
    finally:
        os.close(root_fd)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def filtered_copy(context: Context, rel: str, dest: str) -> str:
    """``RUN --mount=type=bind`` from the context: ``rel`` copied to ``dest`` less what
    .dockerignore excludes (owners, modes, links kept), so the step sees the context
    docker sends and its writes (``rw``) go nowhere. Returns the path to bind."""
    top = os.path.join(context.root, rel) if rel else context.root
    if not os.path.isdir(top):
        os.makedirs(dest)
        target = os.path.join(dest, os.path.basename(top))
        shutil.copy2(top, target)
        return target
    os.makedirs(dest)
    dirs: list[tuple[str, os.stat_result]] = []
    for crel, st in context.walk(rel):
        sub = crel[len(rel):].lstrip("/") if rel else crel
        src, target = os.path.join(context.root, crel), os.path.join(dest, sub)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if stat.S_ISDIR(st.st_mode):
            os.makedirs(target, exist_ok=True)
            dirs.append((target, st))
            continue
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(src, target)
        else:
            continue  # sockets, fifos, devices: not sent with a context
        os.lchown(target, st.st_uid, st.st_gid)
    for target, st in reversed(dirs):  # modes last: a 0555 dir must take its children
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    return dest


def in_private_namespace(work: Callable[[], None]) -> None:
    """``work`` in a forked child with its own mount namespace, so every mount it makes
    vanishes with it; its failure comes back as a BoxError with its message."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_fd)
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
            work()
        except BaseException as e:  # everything goes back to the parent as one line
            code = 1
            message = str(e) if isinstance(e, BoxError) else f"{type(e).__name__}: {e}"
            with contextlib.suppress(OSError):
                os.write(write_fd, message.encode()[:60000])
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BoxError(message or f"build helper ended with status {status}")
