"""The runtime's side of the events journal (``formats.events``): docker's attributes
for each kind of actor, written by whoever causes the event. Never raises: an event that
cannot be journaled must not fail the command or the monitor that caused it."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any


def container_attributes(cfg: dict[str, Any], **extra: object) -> dict[str, str]:
    """moby's LogContainerEventWithAttributes: the container's labels, then ``image``
    (what the user ran) and ``name``, then the event's own (``exitCode``, ``signal``)."""
    config = cfg.get("Config") or {}
    attrs = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    attrs["image"] = str(config.get("Image") or cfg.get("Image") or "")
    attrs["name"] = str(cfg.get("Name") or "").lstrip("/")
    attrs.update({k: str(v) for k, v in extra.items()})
    return attrs


def container_event(root: str, cfg: dict[str, Any], action: str, **extra: object) -> None:
    from formats.events import record

    record(root, "container", action, str(cfg.get("ID") or ""),
           container_attributes(cfg, **extra))


def event(root: str, kind: str, action: str, actor_id: str, **attrs: object) -> None:
    """An image, network or volume event with ``attrs`` as its attributes."""
    from formats.events import record

    record(root, kind, action, actor_id, {k: str(v) for k, v in attrs.items()})


def network_events(root: str, cfg: dict[str, Any], action: str) -> None:
    """moby's connectToNetwork on every start and releaseNetwork on every exit (before
    ``die``): one network event per network of the container ``cfg``, attributes
    ``container``, ``name``, ``type`` (the driver) as LogNetworkEventWithAttributes sets
    them. ``none`` and ``host`` are networks too (drivers null and host), with their ids
    from the root's records; ``container:X`` joins another's and has none (moby returns
    early). Events only: box's monitor keeps the attachment across restart-policy
    restarts."""
    from formats.events import record

    cid = str(cfg.get("ID") or "")
    mode = str((cfg.get("HostConfig") or {}).get("NetworkMode") or "none")
    if mode.startswith("container:"):
        return
    if mode in ("none", "host"):
        found = _predefined(root, mode)
        if found is not None:
            record(root, "network", action, found[0],
                   {"container": cid, "name": mode, "type": found[1]})
        return
    for name, ep in ((cfg.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if ep and ep.get("NetworkID"):
            record(root, "network", action, str(ep["NetworkID"]),
                   {"container": cid, "name": str(name), "type": "bridge"})


# (root, name) -> (id, driver): the monitor asks at the start and again before ``die``
_PREDEFINED: dict[tuple[str, str], tuple[str, str]] = {}


def _predefined(root: str, name: str) -> tuple[str, str] | None:
    """(Id, Driver) of the predefined network ``name`` (``none``, ``host``) of ``root``.

    Read from its record with stdlib json (this is ``box run --network none``'s path,
    where runtime.network stays unimported: a scan of a few small files). A root no
    network command has touched has no records yet: ``runtime.network.store`` makes them
    as ``box network ls`` would, once per root. None if that fails too."""
    key = (root, name)
    if key in _PREDEFINED:
        return _PREDEFINED[key]
    import json
    import os

    folder = os.path.join(root, "network", "networks")
    try:
        files = [e.path for e in os.scandir(folder) if e.name.endswith(".json")]
    except OSError:
        files = []
    for path in files:
        try:
            with open(path, "rb") as f:
                rec = json.loads(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("Name") == name and rec.get("Id"):
            _PREDEFINED[key] = (str(rec["Id"]), str(rec.get("Driver") or ""))
            return _PREDEFINED[key]
    try:
        from runtime.network.store import NetworkStore

        rec = NetworkStore(root, report=lambda _line: None).get(name)
    except Exception:  # a damaged root: the event is left out, the container runs
        return None
    _PREDEFINED[key] = (str(rec["Id"]), str(rec["Driver"]))
    return _PREDEFINED[key]
