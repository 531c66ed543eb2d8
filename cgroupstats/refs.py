"""A running container's ``ContainerRef`` from its state files (``config.v2.json`` and,
for Docker's, ``hostconfig.json``): what the collector's discovery and ``box stats`` both
need before they can open a reader.

Box records the cgroup directories it made (``Box.CgroupPaths``); for Docker's files the
group is looked for where Docker puts it (``formats.statefile.docker_cgroups``). Labels
pass only through the whitelist; Env is never read into a ref.
"""

from __future__ import annotations

import os

import orjson

from cgroupstats.layout import Layout
from cgroupstats.model import ContainerRef, Source
from formats import statefile
from formats.labels import LabelWhitelist
from formats.units import parse_rfc3339

NO_LABELS = LabelWhitelist(())


def started_at(doc: dict) -> float:
    """``State.StartedAt`` as epoch seconds; 0 for Docker's zero time or garbage."""
    return _seconds(statefile.started_at(doc))


def finished_at(doc: dict) -> float:
    """``State.FinishedAt`` as epoch seconds; 0 for Docker's zero time or garbage."""
    return _seconds(statefile.finished_at(doc))


def _seconds(text: str) -> float:
    if not text:
        return 0.0
    try:
        return parse_rfc3339(text) / 1e9
    except ValueError:
        return 0.0


def load_json(path: str) -> dict | None:
    """A state file parsed, or None when unreadable, torn or not an object."""
    try:
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return None  # mid-rewrite by a non-atomic writer: the next scan retries
    return doc if isinstance(doc, dict) else None


def ref_from_doc(doc: dict, config: str, layout: Layout,
                 whitelist: LabelWhitelist = NO_LABELS, mtime_ns: int = 0) -> ContainerRef | None:
    """A running container's ref from its parsed ``config.v2.json`` (``config``: its
    path); None if stopped. ``cgroup_paths`` is empty for a Docker container whose group
    does not exist yet."""
    cid = statefile.container_id(doc)
    if not statefile.says_running(doc) or not cid:
        return None
    recorded = statefile.box_cgroup(doc)
    if recorded is not None:
        version, paths = recorded
        version = version or layout.version
        if version == 2 and "unified" not in paths:
            paths = {"unified": next(iter(paths.values()))}
        cgroup = layout.relative(paths.get("memory") or next(iter(paths.values())))
        if version == 1 and "unified" not in paths and layout.unified:
            side = os.path.join(layout.unified, cgroup.strip("/"))
            if os.path.isdir(side):
                paths["unified"] = side
    else:
        version = layout.version
        cgroup = docker_cgroup(cid, os.path.dirname(config), layout)
        paths = layout.paths_for(cgroup) if cgroup else {}
    return _ref(doc, config, whitelist, mtime_ns, cgroup, version, paths, statefile.pid(doc))


def ended_ref(doc: dict, config: str, layout: Layout,
              whitelist: LabelWhitelist = NO_LABELS, mtime_ns: int = 0) -> ContainerRef:
    """The ref of a container that is not running (discovery hands its ending over):
    who it was, without a group or a pid."""
    return _ref(doc, config, whitelist, mtime_ns, "", layout.version, {}, 0)


def _ref(doc: dict, config: str, whitelist: LabelWhitelist, mtime_ns: int, cgroup: str,
         version: int, paths: dict[str, str], pid: int) -> ContainerRef:
    """What a ref takes from the state file itself, around the group found for it."""
    source: Source = "box" if statefile.written_by_box(doc) else "docker"
    return ContainerRef(
        id=statefile.container_id(doc),
        name=statefile.container_name(doc),
        image=statefile.image_name(doc),
        cgroup=cgroup,
        cgroup_version=version,
        cgroup_paths=paths,
        labels=whitelist.filter(statefile.labels(doc)),
        pid=pid,
        state_file=config,
        state_mtime_ns=mtime_ns,
        started_at=started_at(doc),
        restart_count=statefile.restart_count(doc),
        source=source,
        paused=statefile.paused(doc),
        created_at=_seconds(statefile.created(doc)),
        health=statefile.health_status(doc),
    )


def docker_cgroup(cid: str, container_dir: str, layout: Layout) -> str:
    """The first of Docker's candidate groups that exists; "" when none does (not
    started yet)."""
    hostconfig = load_json(os.path.join(container_dir, statefile.HOSTCONFIG))
    base = layout.walk_root
    for cgroup in statefile.docker_cgroups(cid, hostconfig):
        if base and os.path.isdir(base + cgroup):
            return cgroup
    return ""
