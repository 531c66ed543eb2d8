"""A container's writable layer: where it lives under a state root, and its size as
``docker ps -s`` counts it (the API's ``SizeRw``). ``box ps -s``, ``box inspect -s``,
``box system df`` and the collector's ``container_fs_usage_bytes`` all use this one number.

Where: box keeps a container's layer at ``<root>/overlay2/<id>/diff`` (its own layout);
Docker's overlay2 driver names the layer by a mount id read from
``<root>/image/overlay2/layerdb/mounts/<id>/mount-id``, and the layer is
``<root>/overlay2/<mount-id>/diff``. Other graph drivers (btrfs, zfs, the containerd
image store's snapshotter) have no such directory: "" then.

Size (moby ``pkg/directory.Size``, which overlay2's ``DiffSize`` calls on the upperdir):
walk without following links; every entry that is not a directory counts its ``st_size``
(the apparent size, not allocated blocks: a sparse file counts its length, a symlink the
length of its target, a whiteout device 0) once per inode, so hard links count once;
directories count nothing; an entry that vanishes mid-walk is skipped. Only an inode
with more than one link can be met twice, so only those are remembered.

``LayerWalk`` does the walk in steps of a bounded number of entries, so a caller can
spread one walk over time (the collector caps its walking cost this way);
``tree_size`` is the whole walk at once (also what ``box system df`` counts for
volumes, as moby does). Standard library only.
"""

from __future__ import annotations

import os

OVERLAY = "overlay2"
_NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
MOUNTS = ("image", "overlay2", "layerdb", "mounts")  # Docker: .../mounts/<id>/mount-id


def state_root(config_path: str) -> str:
    """The state root of a ``<root>/containers/<id>/config.v2.json`` path."""
    return os.path.dirname(os.path.dirname(os.path.dirname(config_path)))


def docker_mount_id(root: str, cid: str) -> str:
    """The overlay2 mount id Docker recorded for a container's layer, or ""."""
    try:
        with open(os.path.join(root, *MOUNTS, cid, "mount-id"), "rb") as f:
            mount_id = f.read(256).strip().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return ""
    # a plain name, never a path: a damaged file must not point the walk elsewhere
    ok = mount_id and mount_id.strip(_NAME) == "" and mount_id not in (".", "..")
    return mount_id if ok else ""


def upper_dir(root: str, cid: str) -> str:
    """The writable layer (overlay upperdir) of container ``cid`` under state root
    ``root``: Docker's (through its mount id) or box's; "" when there is none."""
    mount_id = docker_mount_id(root, cid)
    for name in (mount_id, cid) if mount_id else (cid,):
        diff = os.path.join(root, OVERLAY, name, "diff")
        if os.path.isdir(diff):
            return diff
    return ""


class LayerWalk:
    """One walk of a tree, done ``step`` by ``step``; ``size`` is final once ``done``."""

    __slots__ = ("stack", "linked", "size", "entries", "done")

    def __init__(self, path: str) -> None:
        self.stack = [path]
        self.linked: set[int] = set()  # inodes with st_nlink > 1 already counted
        self.size = 0
        self.entries = 0  # entries seen so far (what a step's budget counts)
        self.done = False

    def step(self, budget: int = 1 << 62) -> bool:
        """Walk on until about ``budget`` entries more are seen; True when finished."""
        stack, linked = self.stack, self.linked
        limit = self.entries + budget
        size, entries = self.size, self.entries
        while stack and entries < limit:
            try:
                it = os.scandir(stack.pop())
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            with it:
                for entry in it:
                    entries += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:  # gone since the listing
                        continue
                    if st.st_size and st.st_nlink > 1:
                        if st.st_ino in linked:
                            continue
                        linked.add(st.st_ino)
                    size += st.st_size
        self.size, self.entries = size, entries
        self.done = not stack
        return self.done


def tree_size(path: str) -> int:
    """moby's ``directory.Size`` of ``path``: a layer's ``SizeRw`` (0 when it does not
    exist)."""
    walk = LayerWalk(path)
    walk.step()
    return walk.size
