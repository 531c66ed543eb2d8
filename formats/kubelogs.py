"""The kubelet's log file names, which carry a pod container's Kubernetes names: the
shipper reads them to label log lines, the collector to label a ``kubepods`` group's
metrics without asking the API server.

- ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log``: one symlink per
  container (id: the runtime's 64-hex container id, the one in its cgroup path);
- ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log``: one directory per
  pod (uid: the pod's, the one in its ``pod<uid>`` cgroup).

Pod, namespace and container names are DNS names (no "_"), so the "_" splits are
unambiguous; anything else is not a kubelet name (None). Standard library only.
"""

from __future__ import annotations

from typing import NamedTuple

_HEX = "0123456789abcdef"
_DNS = "abcdefghijklmnopqrstuvwxyz0123456789-."


class ContainerLog(NamedTuple):
    pod: str
    namespace: str
    container: str
    container_id: str


class PodDir(NamedTuple):
    namespace: str
    pod: str
    uid: str


def _dns(name: str) -> bool:
    return bool(name) and name.strip(_DNS) == ""


def parse_container_log(name: str) -> ContainerLog | None:
    """``<pod>_<namespace>_<container>-<id>.log`` (a /var/log/containers entry)."""
    if not name.endswith(".log"):
        return None
    stem, dash, cid = name[:-4].rpartition("-")
    if not dash or len(cid) != 64 or cid.strip(_HEX):
        return None
    parts = stem.split("_")
    if len(parts) != 3 or not all(_dns(p) for p in parts):
        return None
    return ContainerLog(parts[0], parts[1], parts[2], cid)


def parse_pod_dir(name: str) -> PodDir | None:
    """``<namespace>_<pod>_<uid>`` (a /var/log/pods entry)."""
    parts = name.split("_")
    if len(parts) != 3 or not all(_dns(p) for p in parts):
        return None
    return PodDir(*parts)


def pod_uid_of_cgroup(cgroup: str) -> str:
    """The pod uid in a ``kubepods`` cgroup path: cgroupfs ``.../pod<uid>/<id>``, or
    systemd ``.../kubepods-<qos>-pod<uid with "_" for "-">.slice/<scope>``; "" if none."""
    for part in reversed(cgroup.split("/")):
        if part.startswith("pod") and not part.endswith(".slice"):
            return part[3:]
        if part.endswith(".slice") and "-pod" in part:
            return part[:-6].rpartition("-pod")[2].replace("_", "-")
    return ""
