"""The scratch directories and mounts a build step needs: a private tree under
``<root>/build/tmp`` (removed with everything in it), and read-only overlays of a
stage's layers (a COPY --from source, a RUN --mount from=)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator

from runtime import syscalls as sc
from runtime.errors import BoxError


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


def mount_layers(layer_dirs: list[str], target: str, empty: str) -> None:
    """A read-only overlay of ``layer_dirs`` (top-most first) at ``target``; overlayfs
    wants two lower dirs without an upper one, so an empty dir is put below."""
    os.makedirs(target, exist_ok=True)
    os.makedirs(empty, exist_ok=True)
    lowers = ":".join([*layer_dirs, empty])
    sc.mount("overlay", target, "overlay", sc.MS_RDONLY, f"lowerdir={lowers}")


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
