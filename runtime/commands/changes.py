"""``box rename`` and ``box diff``: a container's name and its writable layer's changes.

``diff`` reads the overlay upper dir the way moby's overlay differ does
(``archive.OverlayChanges``): a 0:0 character device (whiteout) or an opaque directory
is ``D``, an entry also present in a lower layer ``C``, anything else ``A``; the parent
of an added or deleted entry is ``C``, in the walk's lexical order, as docker prints it.
The files box itself puts into every root (``/etc/hosts``, ``/proc`` ...) are not
changes, as docker keeps them in its init layer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

from runtime.build.layer import is_opaque, is_placeholder, is_whiteout
from runtime.errors import BoxError, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store


def add_rename(p: FlagParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


def cmd_rename(paths: Paths, args: Namespace) -> int:
    """The new name is reserved first (so a taken one fails with docker's conflict and
    nothing changes), then the record, then the old name is released and the hosts
    files of peers on user networks are rewritten."""
    from runtime.network.hosts import refresh

    old, new = args.container, args.new_name.lstrip("/")
    if not old or not new:
        raise InvalidArgument("Neither old nor new names may be empty")
    store = Store(paths)
    cid = store.resolve(old)
    cfg = store.load(cid)
    current = cfg["Name"].lstrip("/")
    if current == new:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    store.reserve_name(new, cid)
    try:
        with store.lock(cid):
            cfg = store.load(cid)
            cfg["Name"] = "/" + new
            store.save(cfg)
    except BaseException:
        store.release_name(new)
        raise
    store.release_name(current)
    from runtime.journal import container_event

    container_event(paths.root, cfg, "rename", oldName="/" + current)  # moby's attribute
    networks = set((cfg.get("NetworkSettings") or {}).get("Networks") or {}) - {"bridge"}
    if networks:
        refresh(store, {cid}, networks)
    return 0


# -- diff ---------------------------------------------------------------------------
def add_diff(p: FlagParser) -> None:
    p.add_argument("container", metavar="CONTAINER")


class _Differ:
    def __init__(self, upper: str, lowers: list[str]) -> None:
        from runtime.build.layer import RUNTIME_PLACEHOLDERS

        self.upper, self.lowers = upper, lowers
        self.placeholders = {f"/{p}" for p in RUNTIME_PLACEHOLDERS}
        self.out: list[tuple[str, str]] = []
        self.changed_dirs: set[str] = set()

    def _lower(self, rel: str) -> os.stat_result | None:
        for lower in self.lowers:
            try:
                return os.lstat(lower + rel)
            except OSError:
                continue
        return None

    def _differs(self, path: str, old: os.stat_result, new: os.stat_result) -> bool:
        """moby's naive differ (overlay2's Changes since 2018): go-archive's
        statDifferent (mode, owner, rdev; mtime and size for non-directories only,
        moby#9874) or a different ``security.capability``. A directory whose only change
        is its mtime is not a change."""
        if (old.st_mode != new.st_mode or old.st_uid != new.st_uid
                or old.st_gid != new.st_gid or old.st_rdev != new.st_rdev):
            return True
        if not stat.S_ISDIR(new.st_mode) and (old.st_size != new.st_size or not _same_time(
                old.st_mtime_ns, new.st_mtime_ns)):
            return True
        lower = next((d for d in self.lowers if os.path.lexists(d + path)), None)
        return lower is not None and _capability(lower + path) != _capability(self.upper + path)

    def _hidden(self, path: str) -> bool:
        """D for each entry of the lower layers' ``path`` that the opaque upper
        directory ``path`` hides (and does not hold again); whether there was one."""
        kept = set(os.listdir(self.upper + path))
        below: dict[str, str] = {}
        for lower in self.lowers:
            with contextlib.suppress(OSError):
                for name in os.listdir(lower + path):
                    below.setdefault(name, lower)
            if is_opaque(lower + path):
                break  # what lies deeper was already hidden in the image
        found = False
        for name in sorted(set(below) - kept):
            with contextlib.suppress(OSError):
                if not is_whiteout(os.lstat(f"{below[name]}{path}/{name}")):
                    self.out.append(("D", f"{path}/{name}"))
                    found = True
        return found

    def walk(self, rel: str = "") -> bool:
        """Record the changes below ``rel``; whether there was any."""
        found = False
        for name in sorted(os.listdir(self.upper + (rel or "/"))):
            path = f"{rel}/{name}"
            st = os.lstat(self.upper + path)
            if path in self.placeholders and is_placeholder(self.upper + path, st):
                continue  # box's own mount points, as docker's init layer
            found |= self._entry(path, st)
        return found

    def _entry(self, path: str, st: os.stat_result) -> bool:
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_whiteout(st):
            kind = "D"
        else:
            below = self._lower(path)
            kind = "A" if below is None else "C"
            if kind == "C" and is_dir and stat.S_ISDIR(below.st_mode):
                # a directory that only holds changes is C through its children; an
                # opaque one (removed and made again) too, its hidden entries being D:
                # moby's naive differ sees both trees, not overlay's markers
                index = len(self.out)
                self.changed_dirs.add(path)
                found = self.walk(path)
                if is_opaque(self.upper + path) and self._hidden(path):
                    found = True
                    self.out[index:] = sorted(self.out[index:], key=lambda c: c[1].split("/"))
                if found or self._differs(path, below, st):
                    self.out.insert(index, ("C", path))
                    return True
                self.changed_dirs.discard(path)
                return False
            if kind == "C" and not self._differs(path, below, st):
                return False  # copied up (a no-op chown, an open for writing): as moby
        parent = os.path.dirname(path)
        if parent != "/" and parent not in self.changed_dirs:
            self.out.append(("C", parent))
            self.changed_dirs.add(parent)
        self.out.append((kind, path))
        if is_dir:
            self.changed_dirs.add(path)
            if not is_whiteout(st):
                self.walk(path)
        return True


def _same_time(a: int, b: int) -> bool:
    """go-archive's sameFsTime: equal, or the same second with one side whole (a time
    that went through a tar without sub-second precision)."""
    return a == b or (a // 10**9 == b // 10**9 and (a % 10**9 == 0 or b % 10**9 == 0))


def _capability(path: str) -> bytes | None:
    try:
        return os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        return None


def container_changes(paths: Paths, cfg: dict) -> list[tuple[str, str]]:
    """(kind, path) of every change in the container's writable layer, docker's order."""
    upper = os.path.join(paths.overlay_dir(cfg["ID"]), "diff")
    lowers = list((cfg.get("Box") or {}).get("LowerDirs") or [])
    if not os.path.isdir(upper):
        raise BoxError(f"container {cfg['ID'][:12]} has no writable layer")
    differ = _Differ(upper, lowers)
    differ.walk()
    return differ.out


def cmd_diff(paths: Paths, args: Namespace) -> int:
    store = Store(paths)
    cfg = store.load(store.resolve(args.container))
    sys.stdout.write("".join(f"{kind} {path}\n" for kind, path in container_changes(paths, cfg)))
    return 0
