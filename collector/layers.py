"""The writable layer's size of every container (``container_fs_usage_bytes``), walked in
one background thread at a slow cadence with a cost cap, never on the sampling path.

Where the layer is: box's and Docker's state roots say it (``formats.layers``); any other
container (a Kubernetes pod's under containerd or CRI-O, found in the cgroup tree) has its
overlay upperdir in its process's ``/proc/<pid>/mountinfo``, as the host names it (the
collector needs that path readable: the DaemonSet mounts the runtimes' roots read-only).

Why a cadence walk and not inotify: a layer's size changes when a file grows, and only a
watch on every directory of every layer would see that (``fs.inotify.max_user_watches``
is one budget per node, shared with the shipper and the workloads); watches added as
directories appear miss what was written before they were in place, so a walk is needed
anyway; and a busy container (a log file appended to in its layer) would turn into a
stream of events for a number that moves slowly. cAdvisor also walks (``du``, once a
minute per container); its cost is the known complaint, so ours is bounded twice:

- cadence: each layer is walked again ``every`` seconds (60 by default, jittered), new
  containers first, so a fresh container has a number within a second or two;
- cost cap: a walk proceeds in steps of ``chunk`` entries and, after each, sleeps so that
  walking takes at most ``duty`` of one core (5% by default) whatever the layers hold; a
  step is short enough (~2 ms per 1000 entries) that the sampler never waits on it.

So a layer of 10k files costs ~25 ms of CPU per minute, and a node whose layers hold
more than ``duty * every`` seconds of walking just walks each less often (the numbers in
BENCHMARKS.md, "issue 16: writable layer"). The size itself is ``formats.layers``, the
same number ``box ps -s`` prints.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping

from cgroupstats.model import ContainerRef, LayerUsage
from collector.filesystems import Filesystems, process_upper_dir
from formats.layers import LayerWalk, state_root, upper_dir


def _first_pid(ref: ContainerRef) -> int:
    """A process of the container's group (its first in cgroup.procs), 0 if none."""
    for path in ref.cgroup_paths.values():
        try:
            with open(f"{path}/cgroup.procs") as f:
                first = f.readline().strip()
        except OSError:
            continue
        if first.isdigit():
            return int(first)
    return 0


class LayerSizes:
    """``sync`` (a pipeline ``on_scan`` hook) follows the containers; ``usage`` holds the
    last finished walk of each, read by the pipeline into its samples."""

    def __init__(self, every: float = 60.0, duty: float = 0.05, chunk: int = 1000,
                 filesystems: Filesystems | None = None, proc_root: str = "/proc",
                 on_error: Callable[[str], None] | None = None) -> None:
        self.every = every
        self.duty = min(max(duty, 0.001), 1.0)
        self.chunk = chunk
        self.proc_root = proc_root
        self.filesystems = filesystems or Filesystems()
        self.usage: dict[str, LayerUsage] = {}  # replaced whole: safe to read anywhere
        self._dirs: dict[str, str] = {}  # container id -> its upper dir
        self._due: dict[str, float] = {}  # container id -> monotonic time of its next walk
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owed = 0.0  # seconds of rest the last walk's last step left to take
        self._on_error = on_error or (lambda msg: None)
        # what the walks cost (BENCHMARKS.md, and a test that the cap holds)
        self.walks_total = 0
        self.entries_total = 0
        self.cpu_seconds_total = 0.0

    # -- following the containers -------------------------------------------------------

    def sync(self, refs: Mapping[str, ContainerRef]) -> None:
        """New containers get their layer looked up and walked first; containers gone
        are forgotten. Starts the walker on first use."""
        added = False
        with self._lock:
            for cid in [c for c in self._dirs if c not in refs]:
                del self._dirs[cid]
                self._due.pop(cid, None)
            for cid, ref in refs.items():
                if cid in self._dirs:
                    continue
                found = self._find(ref)
                if found is None:
                    continue  # no process yet to ask: the next scan tries again
                self._dirs[cid] = found
                if found:
                    self._due[cid] = 0.0
                    added = True
        if len(self.usage) > len(self._dirs) or any(c not in self._dirs for c in self.usage):
            self.usage = {c: u for c, u in self.usage.items() if c in self._dirs}
        if added:
            self.start()
            self._wake.set()

    def _find(self, ref: ContainerRef) -> str | None:
        """A container's writable layer: from its state root's layout (box, Docker's
        overlay2), else from what its process has mounted on "/" (any overlay runtime:
        containerd, CRI-O; the pid from the state file or the group's cgroup.procs).
        "" when it has none; None when no process could be asked."""
        if ref.state_file:
            found = upper_dir(state_root(ref.state_file), ref.id)
            if found or not ref.pid:
                return found
        pid = ref.pid or _first_pid(ref)
        return process_upper_dir(self.proc_root, pid) if pid else None

    # -- the walker ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="layer-sizes", daemon=True)
            self._thread.start()

    def _next(self) -> tuple[str, str, float]:
        """(id, dir, seconds until due) of the container walked next; ("", "", inf)."""
        with self._lock:
            if not self._due:
                return "", "", float("inf")
            cid = min(self._due, key=self._due.__getitem__)
            return cid, self._dirs[cid], self._due[cid] - time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            cid, path, wait = self._next()
            if wait > 0:
                self._wake.wait(min(wait, 3600.0))
                self._wake.clear()
                continue
            usage = self.walk(path)
            with self._lock:
                if cid not in self._dirs:  # gone while walked
                    continue
                self._due[cid] = time.monotonic() + self.every * random.uniform(0.9, 1.1)
            if usage is not None:
                self.usage = {**self.usage, cid: usage}
            # the last step's share of rest, before the next walk (many small layers
            # due at once, at start, stay under the cap too)
            self._stop.wait(self._owed)

    def walk(self, path: str) -> LayerUsage | None:
        """One paced walk of ``path``: steps of ``chunk`` entries, each followed by a sleep
        that keeps the walk's share of one core at ``duty``. None when stopped or when
        the layer's filesystem cannot be read (the container went)."""
        try:
            device, limit = self.filesystems.device_of(path)
        except OSError:
            return None
        walk = LayerWalk(path)
        rest = (1.0 - self.duty) / self.duty
        while True:
            t0 = time.thread_time()
            done = walk.step(self.chunk)
            spent = time.thread_time() - t0
            self.cpu_seconds_total += spent
            if done:
                self._owed = spent * rest
                break
            if self._stop.wait(spent * rest):
                return None
        self.walks_total += 1
        self.entries_total += walk.entries
        try:  # cAdvisor's container_fs_inodes_free/total: the layer's filesystem's
            vfs = os.statvfs(path)
        except OSError:
            return None
        return LayerUsage(device, walk.size, limit, vfs.f_ffree, vfs.f_files)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
