"""Kubernetes names for pod containers without the API server: the kubelet's
``pod``, ``namespace`` and ``container`` labels (its ``/metrics/cadvisor`` names), read
from the node's log directories (``formats.kubelogs``).

``<log_root>/containers`` gives a container id its three names; ``<log_root>/pods``
gives a pod uid (from the cgroup path) its pod and namespace, for a group no link names
(the pod's sandbox, or a container whose link is not there yet: then ``container`` is
empty). Each directory is listed again only when its mtime moved (a link or pod directory
created or removed), so ``refresh`` costs two stats per scan; discovery adds both
directories to what the pipeline watches, so a pod coming or going wakes a scan.
"""

from __future__ import annotations

import os

from formats.kubelogs import parse_container_log, parse_pod_dir, pod_uid_of_cgroup

NO_NAMES = ("", "", "")


class KubeNames:
    def __init__(self, log_root: str = "/var/log") -> None:
        self.containers_dir = os.path.join(log_root, "containers")
        self.pods_dir = os.path.join(log_root, "pods")
        self._by_id: dict[str, tuple[str, str, str]] = {}  # id -> (pod, namespace, container)
        self._by_uid: dict[str, tuple[str, str]] = {}  # pod uid -> (pod, namespace)
        self._mtimes: dict[str, int] = {}

    @property
    def dirs(self) -> list[str]:
        """The directories to watch (those that exist)."""
        return [d for d in (self.containers_dir, self.pods_dir) if os.path.isdir(d)]

    def _changed(self, path: str) -> list[str] | None:
        """The entries of ``path`` when its mtime moved since the last listing, else None
        ([] when it is gone)."""
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            mtime = -1
        if self._mtimes.get(path) == mtime:
            return None
        self._mtimes[path] = mtime
        try:
            return os.listdir(path)
        except OSError:
            return []

    def refresh(self) -> None:
        """Re-read a directory whose contents changed."""
        names = self._changed(self.containers_dir)
        if names is not None:
            by_id = {}
            for name in names:
                log = parse_container_log(name)
                if log is not None:
                    by_id[log.container_id] = (log.pod, log.namespace, log.container)
            self._by_id = by_id
        names = self._changed(self.pods_dir)
        if names is not None:
            by_uid = {}
            for name in names:
                pod = parse_pod_dir(name)
                if pod is not None:
                    by_uid[pod.uid] = (pod.pod, pod.namespace)
            self._by_uid = by_uid

    def names(self, cid: str, cgroup: str) -> tuple[str, str, str]:
        """(pod, namespace, container) of a pod's group; empty strings when unknown."""
        known = self._by_id.get(cid)
        if known is not None:
            return known
        pod = self._by_uid.get(pod_uid_of_cgroup(cgroup))
        return (pod[0], pod[1], "") if pod is not None else NO_NAMES
