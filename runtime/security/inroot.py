"""Paths inside a container's root resolved as the container would resolve them, never
through its symlinks onto the host: an image whose ``/etc`` is a symlink to ``/root``
must not make ``box run`` create or mount over ``/root/hosts`` of the host.

Everything resolves with ``openat2(RESOLVE_IN_ROOT)`` from an fd of the root, and mounts
go onto ``/proc/self/fd/N`` of the checked fd, as runc does.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime import syscalls as sc

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def _open(root_fd: int, rel: str, flags: int = 0) -> int:
    return sc.openat2(root_fd, rel or ".", os.O_PATH | os.O_CLOEXEC | flags, _RESOLVE)


def ensure_in_root(root_fd: int, path: str, directory: bool,
                   owner: tuple[int, int] | None = None) -> int:
    """An ``O_PATH`` fd of ``path`` (absolute, inside the root), created if missing: a
    file (empty, 0644) or a directory (0755), parents as directories. What it creates
    gets ``owner`` when given (BuildKit's ``COPY --chown`` chowns the directories it
    makes for the destination too)."""
    rel = path.strip("/")
    try:
        return _open(root_fd, rel, os.O_DIRECTORY if directory else 0)
    except FileNotFoundError:
        pass
    parent_rel, _, name = rel.rpartition("/")
    parent = (ensure_in_root(root_fd, "/" + parent_rel, True, owner) if parent_rel
              else os.dup(root_fd))
    try:
        if directory:
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=parent))
        if owner is not None:
            os.chown(name, *owner, dir_fd=parent, follow_symlinks=False)
    except FileExistsError:
        # a dangling symlink: what it points to is not ours to create
        raise OSError(errno.ELOOP, f"{path} in the container is a dangling symlink") from None
    finally:
        os.close(parent)
    return _open(root_fd, rel, os.O_DIRECTORY if directory else 0)


def fd_path(fd: int) -> str:
    """The mount source/target naming exactly the checked inode."""
    return f"/proc/self/fd/{fd}"


def plain_directory(root: str, name: str) -> None:
    """``/proc``, ``/sys`` and ``/dev`` must be real directories of the root (made if
    missing): a symlink there would mount the kernel's filesystems wherever it points."""
    path = os.path.join(root, name.strip("/"))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.mkdir(path, 0o755)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, f"{name} in the container's root is not a directory "
                                     "(a symlink there is refused)")
