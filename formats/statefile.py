"""Docker's container state files, as box writes them and the collector and the shipper
read them: where they live, the field names, and the container facts read from them.

``<root>/containers/<id>/config.v2.json`` holds ``ID``, ``Name`` ("/web"), ``Created``,
``Config{Image, Labels, Env, Cmd, Hostname}``, ``Image`` (the sha256 id), ``State{Running,
Pid, ExitCode, OOMKilled, StartedAt, FinishedAt}``, ``RestartCount``, ``LogPath``; what
only box writes lives under ``Box`` (``CgroupPaths``, ``CgroupVersion``, ``MonitorPid``).
``hostconfig.json`` holds ``CgroupParent``. Readers take a parsed document (a dict) and
never trust its types: a Docker of another version, or a torn write of a non-atomic
writer, may hold anything. Standard library only, cheap to import (``box run`` loads it).
"""

from __future__ import annotations

CONTAINERS = "containers"  # <root>/containers/<id>/
CONFIG = "config.v2.json"
HOSTCONFIG = "hostconfig.json"
BOX_KEY = "Box"  # the one extra key for what only box writes


def log_file(container_dir: str, cid: str) -> str:
    """The live json-file log of a container (rotated ones add ``.1``, ``.2.gz``...)."""
    return f"{container_dir}/{cid}-json.log"


def container_id(doc: dict) -> str:
    cid = doc.get("ID")
    return cid if isinstance(cid, str) else ""


def container_name(doc: dict) -> str:
    """``Name`` without Docker's leading slash ("web")."""
    return str(doc.get("Name") or "").lstrip("/")


def image_name(doc: dict) -> str:
    """What the user ran (``Config.Image``, e.g. "busybox"), else the image id."""
    config = doc.get("Config") or {}
    return str(config.get("Image") or doc.get("Image") or "")


def labels(doc: dict) -> dict:
    """``Config.Labels`` (all of them: filter with ``formats.labels``)."""
    found = (doc.get("Config") or {}).get("Labels") or {}
    return found if isinstance(found, dict) else {}


def state(doc: dict) -> dict:
    found = doc.get("State") or {}
    return found if isinstance(found, dict) else {}


def says_running(doc: dict) -> bool:
    """``State.Running`` as written. The runtime adds whether the writer is still alive
    (``runtime.state.is_running``); a reader of someone else's files cannot."""
    return bool(state(doc).get("Running"))


def paused(doc: dict) -> bool:
    """``State.Paused``: frozen by ``docker pause`` (``Running`` stays true meanwhile)."""
    return state(doc).get("Paused") is True


def pid(doc: dict) -> int:
    return int(state(doc).get("Pid") or 0)


def restart_count(doc: dict) -> int:
    return int(doc.get("RestartCount") or 0)


def started_at(doc: dict) -> str:
    """``State.StartedAt`` (RFC 3339); "" when never started (Docker's zero time)."""
    return _time(doc, "StartedAt")


def finished_at(doc: dict) -> str:
    """``State.FinishedAt`` (RFC 3339); "" when it never ended (Docker's zero time)."""
    return _time(doc, "FinishedAt")


def created(doc: dict) -> str:
    """``Created`` (RFC 3339, top level as Docker writes it); "" when absent."""
    value = doc.get("Created")
    return value if isinstance(value, str) and not value.startswith("0001-") else ""


def health_status(doc: dict) -> str:
    """``State.Health.Status`` ("starting", "healthy", "unhealthy"); "" without a
    healthcheck (Docker's and box's monitor write the same key)."""
    health = state(doc).get("Health")
    status = health.get("Status") if isinstance(health, dict) else None
    return status if isinstance(status, str) else ""


def _time(doc: dict, key: str) -> str:
    value = state(doc).get(key)
    if not isinstance(value, str) or value.startswith("0001-"):
        return ""
    return value


def box_cgroup(doc: dict) -> tuple[int, dict[str, str]] | None:
    """(cgroup version, {controller: absolute dir}) box recorded; None for Docker's files
    (or a box container never started)."""
    box = doc.get(BOX_KEY)
    if not isinstance(box, dict) or not box.get("CgroupPaths"):
        return None
    paths = {str(k): str(v) for k, v in box["CgroupPaths"].items()}
    return int(box.get("CgroupVersion") or 0), paths


def written_by_box(doc: dict) -> bool:
    return isinstance(doc.get(BOX_KEY), dict)


def docker_cgroups(cid: str, hostconfig: dict | None) -> list[str]:
    """Where Docker may have put a container's group, most likely first: under
    hostconfig's ``CgroupParent`` (a slice name with the systemd driver, a path with
    cgroupfs), then its defaults for both drivers."""
    candidates = [f"/docker/{cid}", f"/system.slice/docker-{cid}.scope"]
    parent = (hostconfig or {}).get("CgroupParent") if isinstance(hostconfig, dict) else ""
    if isinstance(parent, str) and parent:
        if parent.endswith(".slice"):  # systemd driver: a slice name, not a path
            candidates.insert(0, f"/{parent}/docker-{cid}.scope")
        else:
            candidates.insert(0, f"/{parent.strip('/')}/{cid}")
    return candidates
