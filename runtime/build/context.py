"""The build context: a directory, less what ``.dockerignore`` excludes. COPY/ADD
sources are resolved in it (wildcards per path component, as Go's filepath.Match),
never outside it, and checksummed by content and metadata (mode, owner, link target;
not mtime), which is the cache key Docker uses for them."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator

from runtime import syscalls as sc
from runtime.build.ignore import Matcher
from runtime.errors import InvalidArgument, NotFound

_WILDCARD = re.compile(r"[*?\[]")


class Context:
    def __init__(self, root: str) -> None:
        if not os.path.isdir(root):
            raise NotFound(f"unable to prepare context: path {root!r} not found")
        self.root = os.path.realpath(root)
        try:
            with open(os.path.join(self.root, ".dockerignore")) as f:
                self.matcher = Matcher.from_text(f.read())
        except FileNotFoundError:
            self.matcher = Matcher([])
        except ValueError as e:
            raise InvalidArgument(f".dockerignore: {e}") from None

    def excluded(self, rel: str) -> bool:
        return bool(self.matcher.patterns) and self.matcher.excluded(rel)

    def _resolve(self, rel: str) -> str | None:
        """The context-relative path ``rel`` names after following its symlinks inside
        the context (openat2 RESOLVE_IN_ROOT), or None when it does not exist."""
        rel = rel.strip("/")
        if not rel or rel == ".":
            return ""
        root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = sc.openat2(root_fd, rel, os.O_PATH | os.O_CLOEXEC,
                            sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            os.close(root_fd)
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return os.path.relpath(real, self.root) if real != self.root else ""

    def sources(self, pattern: str) -> list[str]:
        """Context-relative paths a COPY source names; NotFound as Docker words it."""
        cleaned = os.path.normpath("/" + pattern).lstrip("/")
        if not _WILDCARD.search(cleaned):
            rel = self._resolve(cleaned)
            if rel is None or (rel and self.excluded(rel)):
                raise NotFound(f"file not found in build context or excluded by "
                               f".dockerignore: stat {pattern}: file does not exist")
            return [rel]
        found = [p for p in self._glob(cleaned.split("/"), "") if not self.excluded(p)]
        return sorted(found)

    def _glob(self, parts: list[str], at: str) -> Iterator[str]:
        if not parts:
            yield at
            return
        head, rest = parts[0], parts[1:]
        base = os.path.join(self.root, at)
        if not _WILDCARD.search(head):
            if os.path.lexists(os.path.join(base, head)):
                yield from self._glob(rest, f"{at}/{head}" if at else head)
            return
        try:
            names = sorted(os.listdir(base))
        except (NotADirectoryError, FileNotFoundError):
            return
        rx = re.compile(fnmatch.translate(head).replace(".*", "[^/]*"))
        for name in names:
            if rx.match(name):
                yield from self._glob(rest, f"{at}/{name}" if at else name)

    def walk(self, rel: str, skip: Callable[[str], bool] | None = None
             ) -> Iterator[tuple[str, os.stat_result]]:
        """``rel`` and, for a directory, every entry below it that is not excluded
        (names sorted), as (context-relative path, lstat). ``skip`` (.dockerignore and a
        COPY's --exclude) replaces the .dockerignore test when given."""
        path = os.path.join(self.root, rel) if rel else self.root
        st = os.stat(path) if not rel else os.lstat(path)
        if stat.S_ISLNK(st.st_mode):  # a named source is followed (inside the context)
            st = os.stat(path)
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            yield from self._below(rel, skip)

    def _below(self, rel: str, skip: Callable[[str], bool] | None
               ) -> Iterator[tuple[str, os.stat_result]]:
        path = os.path.join(self.root, rel) if rel else self.root
        for name in sorted(os.listdir(path)):
            child = f"{rel}/{name}" if rel else name
            excluded = skip(child) if skip is not None else self.excluded(child)
            st = os.lstat(os.path.join(self.root, child))
            if not excluded:
                yield child, st
            descend = getattr(skip, "descend", self.matcher.has_exclusions)
            if stat.S_ISDIR(st.st_mode) and (not excluded or descend):
                yield from self._below(child, skip)

    def checksum(self, rels: list[str], skip: Callable[[str], bool] | None = None) -> str:
        """sha256 over each entry's path, type, mode, owner, size, link target and
        content: what decides whether a cached COPY/ADD still holds."""
        h = hashlib.sha256()
        for top in rels:
            for rel, st in self.walk(top, skip):
                h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0"
                         f"{st.st_uid}:{st.st_gid}\0{st.st_size}\0".encode())
                path = os.path.join(self.root, rel)
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(path).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        while chunk := f.read(1 << 20):
                            h.update(chunk)
                h.update(b"\n")
        return h.hexdigest()

    def size(self) -> int:
        """Bytes the context holds after .dockerignore ("Sending build context")."""
        return sum(st.st_size for _, st in self.walk("") if stat.S_ISREG(st.st_mode))
