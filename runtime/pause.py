"""``docker pause`` / ``unpause`` on the state directory: the cgroup freezer (v1
``freezer.state``, v2 ``cgroup.freeze``) through the container's driver, the state
``paused`` (``State.Paused``, still ``Running`` as docker keeps it) and the journal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from runtime.cgroups import open_driver
from runtime.cgroups.driver import Driver
from runtime.errors import BoxError, Conflict
from runtime.journal import container_event
from runtime.state import Store, effective_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _driver(cfg: dict[str, Any]) -> tuple[Driver, dict[str, str]]:
    box = cfg.get("Box") or {}
    paths = box.get("CgroupPaths")
    if not paths:
        raise BoxError(f"Container {cfg['ID']} has no cgroup to freeze")
    return open_driver(version=box.get("CgroupVersion")), paths


def set_paused(store: Store, cid: str, paused: bool) -> dict[str, Any]:
    """Freeze or thaw the container ``cid``; docker's conflicts when it cannot be."""
    with store.lock(cid):
        cfg = store.load(cid)
        status = effective_state(cfg)["Status"]
        if paused and status == "paused":
            raise Conflict(f"Container {cid} is already paused")
        if status == "restarting":
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        if status not in ("running", "paused") or not cfg["State"].get("Pid"):
            raise Conflict(f"Container {cid} is not running")
        if not paused and status != "paused":
            raise Conflict(f"Container {cid} is not paused")
        driver, paths = _driver(cfg)
        try:
            driver.freeze(paths, paused)
        except BoxError as e:
            raise BoxError(f"Cannot {'pause' if paused else 'unpause'} container {cid}: "
                           f"{e}") from None
        cfg["State"].update(Status="paused" if paused else "running", Paused=paused)
        store.save(cfg)
    container_event(store.paths.root, cfg, "pause" if paused else "unpause")
    return cfg


@contextmanager
def paused_while(store: Store, cfg: dict[str, Any]) -> Iterator[None]:
    """``docker commit --pause``: a running container (``cfg`` as just loaded) is frozen
    while its layer is read (and thawed after, even on failure); a stopped or already
    paused one is left as is. ``set_paused`` re-checks under the lock."""
    cid = cfg["ID"]
    status = effective_state(cfg)["Status"]
    froze = False
    if status == "running" and cfg["State"].get("Pid"):
        set_paused(store, cid, True)
        froze = True
    try:
        yield
    finally:
        if froze:
            set_paused(store, cid, False)


def thaw_for_signal(store: Store, cfg: dict[str, Any]) -> None:
    """After a signal to a paused container (stop, kill, rm -f): thaw it so the signal
    lands, as docker does; the state says running until the monitor records the exit."""
    try:
        driver, paths = _driver(cfg)
        driver.freeze(paths, False)
    except BoxError:
        return  # gone already: the monitor records the exit
    with store.lock(cfg["ID"]):
        try:
            fresh = store.load(cfg["ID"])
        except BoxError:
            return
        if fresh["State"].get("Status") == "paused":
            fresh["State"].update(Status="running", Paused=False)
            store.save(fresh)
