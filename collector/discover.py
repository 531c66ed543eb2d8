"""Find the containers to sample: state roots first, then the raw cgroup tree.

State roots (the box root, Docker's root) hold ``containers/<id>/config.v2.json``; a file
is parsed again only when its (mtime, size, inode) changed, so ``scan`` costs about one
stat per container. The cgroup tree is walked only below the parents container runtimes
use; each group is offered to a list of factories in cAdvisor's style ("can you handle
this cgroup?"), the raw one last. A state file becomes a ref through the bottom layer's
``cgroupstats.refs`` (shared with ``box stats``); labels pass only through the whitelist
(exact names or globs, ``formats.labels``, as in the shipper).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from cgroupstats.layout import Layout, detect
from cgroupstats.model import ContainerRef, Source
from cgroupstats.refs import ended_ref, finished_at, load_json, ref_from_doc
from collector.kubenames import KubeNames
from formats import statefile
from formats.labels import LabelWhitelist
from formats.statefile import CONFIG, CONTAINERS

HEX = "0123456789abcdef"
# Where runtimes put container groups, relative to a hierarchy's root.
PARENTS = ("box", "docker", "system.slice", "kubepods.slice", "kubepods")
MAX_DEPTH = 4  # /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/<c>
SCOPE_PREFIXES = ("docker-", "cri-containerd-", "crio-", "containerd-")


def is_id(name: str) -> bool:
    """A 64-hex container id, as Docker, containerd and CRI-O make them."""
    return len(name) == 64 and not name.strip(HEX)


def scope_id(name: str) -> str:
    """The id in a systemd scope name ("docker-<id>.scope"), or ""."""
    if not name.endswith(".scope"):
        return ""
    for prefix in SCOPE_PREFIXES:
        if name.startswith(prefix):
            cid = name[len(prefix) : -len(".scope")]
            return cid if is_id(cid) else ""
    return ""


class Factory(Protocol):
    """One kind of container cgroup. ``handle`` returns the container id, or None."""

    source: Source

    def handle(self, cgroup: str) -> str | None: ...


class DockerFactory:
    """cgroupfs ``/docker/<id>`` and systemd ``/system.slice/docker-<id>.scope``."""

    source: Source = "docker"

    def handle(self, cgroup: str) -> str | None:
        parent, _, name = cgroup.rpartition("/")
        if parent.endswith("/docker") and is_id(name):
            return name
        if name.startswith("docker-") and parent.endswith(".slice"):
            return scope_id(name) or None
        return None


class BoxFactory:
    """Our runtime's ``/box/<id>`` (cgroup parent ``box``)."""

    source: Source = "box"

    def handle(self, cgroup: str) -> str | None:
        parent, _, name = cgroup.rpartition("/")
        return name if parent.endswith("/box") and is_id(name) else None


class KubernetesFactory:
    """Pod containers: systemd ``kubepods*.slice/.../<runtime>-<id>.scope`` and cgroupfs
    ``/kubepods[/<qos>]/pod<uid>/<id>``."""

    source: Source = "cgroup"

    def handle(self, cgroup: str) -> str | None:
        if "/kubepods" not in cgroup:
            return None
        parent, _, name = cgroup.rpartition("/")
        pod = parent.rpartition("/")[2]
        if pod.endswith(".slice") and "-pod" in pod:
            return scope_id(name) or None
        if pod.startswith("pod") and is_id(name):
            return name
        return None


class RawFactory:
    """The catch-all: any direct child of ``/box`` or ``/docker`` the others left."""

    source: Source = "cgroup"

    def handle(self, cgroup: str) -> str | None:
        parent = cgroup.rpartition("/")[0]
        return cgroup if parent in ("/box", "/docker") else None


FACTORIES: tuple[Factory, ...] = (
    DockerFactory(),
    BoxFactory(),
    KubernetesFactory(),
    RawFactory(),
)


class Discovery:
    """Every interval, ``scan()`` returns {id: ContainerRef} of the running containers."""

    def __init__(
        self,
        roots: Sequence[Path | str],
        cgroup_root: Path | str,
        label_whitelist: Iterable[str] = (),
        factories: Sequence[Factory] = FACTORIES,
        kube: KubeNames | None = None,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.layout: Layout = detect(str(cgroup_root))
        self.whitelist = LabelWhitelist(label_whitelist)  # exact names and globs
        self.factories = tuple(factories)
        self.kube = kube  # pod/namespace/container names of kubepods groups
        # config path -> ((mtime_ns, size, inode), ref or None when not running)
        self._states: dict[str, tuple[tuple[int, int, int], ContainerRef | None]] = {}
        self._raw: dict[str, ContainerRef] = {}  # cgroup path -> ref, kept while present
        # the directories the last walk listed (where a new container's group would
        # appear), so a watcher can be told of new groups between scans
        self.walked: frozenset[str] = frozenset()
        # containers whose state file, read anew by the last scan, says they ended after
        # this discovery started: one that started and died between two scans is in no
        # scan, and its die/oom_kill would otherwise be lost (collector.events)
        self.started = time.time()
        self.exited: list[ContainerRef] = []
        self._exits: dict[str, float] = {}  # id -> FinishedAt already handed over

    # -- state roots -------------------------------------------------------------------

    def _scan_states(self) -> dict[str, ContainerRef]:
        seen: dict[str, tuple[tuple[int, int, int], ContainerRef | None]] = {}
        found: dict[str, ContainerRef] = {}
        self.exited = []
        for root in self.roots:
            try:
                entries = os.scandir(root / CONTAINERS)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    config = f"{entry.path}/{CONFIG}"
                    try:
                        st = os.stat(config)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    key = (st.st_mtime_ns, st.st_size, st.st_ino)
                    cached = self._states.get(config)
                    if cached is None or cached[0] != key:
                        cached = (key, self._parse_state(config, st.st_mtime_ns))
                    seen[config] = cached
                    ref = cached[1]
                    if ref is not None and ref.id not in found:
                        found[ref.id] = ref
        self._states = seen
        return found

    def _parse_state(self, config: str, mtime_ns: int) -> ContainerRef | None:
        """A running container's ref from its config.v2.json; None if stopped or torn."""
        doc = load_json(config)  # None while a non-atomic writer is mid-rewrite: retried
        if doc is None:
            return None
        ref = ref_from_doc(doc, config, self.layout, self.whitelist, mtime_ns)
        if ref is None:
            self._note_exit(doc, config, mtime_ns)
        return ref

    def _note_exit(self, doc: dict, config: str, mtime_ns: int) -> None:
        """Hand over an ending that happened since this discovery started, once."""
        cid = statefile.container_id(doc)
        if not cid or statefile.says_running(doc):
            return
        finished = finished_at(doc)  # 0 without a State: never handed over
        if finished < self.started or self._exits.get(cid) == finished:
            return
        self._exits[cid] = finished
        if len(self._exits) > 4096:  # bounded: forget the oldest
            for old in list(self._exits)[:1024]:
                del self._exits[old]
        self.exited.append(ended_ref(doc, config, self.layout, self.whitelist, mtime_ns))

    # -- raw cgroup tree ---------------------------------------------------------------

    def _walk(self) -> Iterable[tuple[str, str, Source]]:
        """(cgroup path, id, source) of every group a factory claims."""
        base = self.layout.walk_root
        if not base:
            return
        stack = [(f"/{p}", 1) for p in PARENTS]
        walked = {base}  # a parent (/docker...) appears in the root
        while stack:
            cgroup, depth = stack.pop()
            try:
                entries = os.scandir(base + cgroup)
            except (FileNotFoundError, NotADirectoryError):
                continue
            walked.add(base + cgroup)
            with entries:
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    child = f"{cgroup}/{entry.name}"
                    for factory in self.factories:
                        cid = factory.handle(child)
                        if cid is not None:
                            yield child, cid, factory.source
                            break
                    else:
                        if depth < MAX_DEPTH and self._descend(child, entry.name):
                            stack.append((child, depth + 1))
        if self.kube is not None:
            walked.update(self.kube.dirs)  # a pod's log link appearing wakes a scan
        self.walked = frozenset(walked)

    @staticmethod
    def _descend(cgroup: str, name: str) -> bool:
        """Only slices and the cgroupfs kubepods tree can hold containers further down."""
        return name.endswith(".slice") or cgroup.startswith("/kubepods/")

    def _raw_ref(self, cgroup: str, source: Source, cid: str) -> ContainerRef:
        """A group with no state file: its path is its id (cAdvisor's raw handler); a
        pod's group also gets its Kubernetes names (a new ref when they change)."""
        ref = self._raw.get(cgroup)
        if ref is None:
            ref = ContainerRef(
                id=cgroup,
                name="",
                image="",
                cgroup=cgroup,
                cgroup_version=self.layout.version,
                cgroup_paths=self.layout.paths_for(cgroup),
                source=source,
            )
        if self.kube is not None and "/kubepods" in cgroup:
            ref = self._with_kube(self.kube, ref, cid, cgroup)
        return ref

    @staticmethod
    def _with_kube(kube: KubeNames, ref: ContainerRef, cid: str, cgroup: str) -> ContainerRef:
        """``ref`` with its Kubernetes names (the same ref when they did not change)."""
        pod, namespace, container = kube.names(cid, cgroup)
        if (ref.pod, ref.namespace, ref.container) != (pod, namespace, container):
            ref = replace(ref, pod=pod, namespace=namespace, container=container)
        return ref

    # -- both ------------------------------------------------------------------------

    def scan(self) -> dict[str, ContainerRef]:
        """Running containers by id; a state file's metadata wins over its raw group."""
        found = self._scan_states()
        if self.kube is not None:
            self.kube.refresh()
        raw: dict[str, ContainerRef] = {}
        for cgroup, cid, source in self._walk():
            known = found.get(cid)
            if known is not None:
                if not known.cgroup_paths:  # Docker-written, group appeared after parse
                    known = found[cid] = replace(
                        known, cgroup=cgroup, cgroup_paths=self.layout.paths_for(cgroup)
                    )
                if self.kube is not None and "/kubepods" in cgroup:  # Docker under kubelet
                    found[cid] = self._with_kube(self.kube, known, cid, cgroup)
                continue
            ref = raw[cgroup] = self._raw_ref(cgroup, source, cid)
            found.setdefault(ref.id, ref)
        self._raw = raw
        return {cid: ref for cid, ref in found.items() if ref.cgroup_paths}
