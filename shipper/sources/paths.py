"""Finding log files: ``<root>/containers/<id>/<id>-json.log`` under each ``--root`` (box
and Docker lay them out alike), and ``--path`` globs for other layouts (Kubernetes'
``/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log``, CRI format).

Discovery is a full rescan (a listdir per container directory: milliseconds for hundreds
of containers), run every ``rescan_interval`` seconds and soon after watchdog (inotify)
reports a file or directory created, moved or deleted under a watched directory, so a
rotation or a new container is seen at once and an inotify overflow costs at most one
interval. Writes are not watched (that would be one event per log line): the reader polls
its open files.

Symlinks are followed only when their target stays inside the configured roots (each
``--root`` and the fixed prefix of each ``--path`` glob): a container cannot make the
shipper read ``/etc/shadow`` by planting a link in its log directory.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from formats.kubelogs import parse_pod_dir
from shipper.enrich import ContainerMeta

DEFAULT_ROOTS = ("/var/lib/box", "/var/lib/docker")
_ROTATED = re.compile(r"\.([1-9][0-9]*)(\.gz)?")
_K8S_ID = re.compile(r"-([0-9a-f]{64})\.log\Z")


@dataclass(frozen=True, slots=True)
class LogFile:
    """A live log file. ``container_dir`` is set for Docker-layout files (where
    ``config.v2.json`` lives); glob files carry metadata derived from their path."""

    path: str
    container_dir: str | None


def glob_prefix(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    prefix = os.sep.join(fixed)
    if len(fixed) == len(parts):  # no wildcard at all: the file's directory
        prefix = os.path.dirname(prefix)
    return prefix or os.sep


def meta_from_path(path: str) -> ContainerMeta:
    """Metadata for a file outside Docker's layout: Kubernetes' pod log layout gives the
    container name (its directory) and pod (the directory above); a
    ``/var/log/containers/<pod>_<ns>_<name>-<id>.log`` link gives the id."""
    m = _K8S_ID.search(path)
    directory = os.path.dirname(path)
    name = os.path.basename(directory)
    pod_dir = os.path.basename(os.path.dirname(directory))
    labels = {}
    pod = parse_pod_dir(pod_dir)  # <namespace>_<pod>_<uid>, the bottom layer's reading
    if pod is not None:
        labels = {"namespace": pod.namespace, "pod": pod.pod}
    return ContainerMeta(m.group(1) if m else "", name, "", labels)


class Discovery:
    """The set of live log files under the roots and globs, and their rotated siblings."""

    def __init__(self, roots: list[str], globs: list[str] | None = None) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.globs = list(globs or [])
        allowed = self.roots + [os.path.abspath(glob_prefix(g)) for g in self.globs]
        self._allowed = [os.path.realpath(a).rstrip(os.sep) + os.sep for a in allowed]
        self._observer = None
        self.refused_links = 0

    def allowed(self, path: str) -> bool:
        """True if ``path`` (after following links) stays inside a configured root."""
        real = os.path.realpath(path)
        return any(real.startswith(a) for a in self._allowed)

    def scan(self) -> list[LogFile]:
        """Every live log file now, Docker layout first, each path once."""
        found: dict[str, LogFile] = {}
        for root in self.roots:
            cdir = os.path.join(root, "containers")
            try:
                ids = os.listdir(cdir)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for cid in ids:
                d = os.path.join(cdir, cid)
                path = os.path.join(d, f"{cid}-json.log")
                if self._usable(path):
                    found[path] = LogFile(path, d)
        for pattern in self.globs:
            for path in glob.glob(pattern):
                if path not in found and self._usable(path):
                    found[path] = LogFile(path, None)
        return list(found.values())

    def _usable(self, path: str) -> bool:
        if not os.path.isfile(path):
            return False
        if os.path.islink(path) or os.path.realpath(path) != os.path.abspath(path):
            if not self.allowed(path):
                self.refused_links += 1
                return False
        return True

    @staticmethod
    def rotated(path: str) -> list[str]:
        """Rotated siblings of ``path``, newest first. Docker's ``.1``, ``.2``... (``.N``
        wins over ``.N.gz`` while both exist: only the plain one is complete); any other
        ``<path>.<suffix>`` (kubelet's ``0.log.20240501-101112``) ordered by mtime."""
        directory, base = os.path.split(path)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        numbered: dict[int, str] = {}
        other: list[str] = []
        for name in names:
            if not name.startswith(base + ".") or ".tmp" in name:
                continue
            m = _ROTATED.fullmatch(name, len(base))
            if m is not None:
                n = int(m.group(1))
                if n not in numbered or not m.group(2):
                    numbered[n] = os.path.join(directory, name)
            else:
                other.append(os.path.join(directory, name))
        result = [numbered[n] for n in sorted(numbered)]
        if other:
            def mtime(p: str) -> float:
                try:
                    return os.stat(p).st_mtime
                except FileNotFoundError:
                    return 0.0
            result += sorted(other, key=mtime, reverse=True)
        return result

    # --- inotify --------------------------------------------------------------------------

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` (from watchdog's thread) when files or directories are
        created, moved or deleted below a root. Roots that do not exist yet are covered by
        the rescan."""
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                on_change()

        kinds = [FileCreatedEvent, FileMovedEvent, FileDeletedEvent, DirCreatedEvent,
                 DirMovedEvent, DirDeletedEvent]
        observer = Observer()
        observer.daemon = True
        dirs = [os.path.join(r, "containers") for r in self.roots]
        dirs += [glob_prefix(g) for g in self.globs]
        watched = 0
        for d in dict.fromkeys(dirs):
            if os.path.isdir(d):
                observer.schedule(Handler(), d, recursive=True, event_filter=kinds)
                watched += 1
        if watched:
            observer.start()
            self._observer = observer

    @property
    def watching(self) -> bool:
        return self._observer is not None

    def close(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if threading.current_thread() is not observer:
                observer.join(timeout=5)
