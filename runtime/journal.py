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
    ``die``): one network event per bridge network of the container ``cfg``. Events
    only: box's monitor keeps the attachment across restart-policy restarts."""
    from formats.events import record

    cid = str(cfg.get("ID") or "")
    for name, ep in ((cfg.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if ep and ep.get("NetworkID"):
            record(root, "network", action, str(ep["NetworkID"]),
                   {"container": cid, "name": str(name), "type": "bridge"})
