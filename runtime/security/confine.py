"""The helper that crosses into a container for ``box cp`` and ``box export``, confined
as ``box exec`` is (CVE-2019-14271).

The helper handles the container's files as root, so anything that makes it run code
from the container would run it as host root. It joins every namespace of a running
container (the pid namespace through a second fork), or makes a private mount and pid
namespace around the container's root when it is stopped, then drops to the container's
capability set before the body runs. The body must do no name service lookups (tarfile's
``gettarinfo`` and non-numeric ``extract`` call getpwuid/getgrnam, and glibc would read
the container's nsswitch.conf and dlopen its ``libnss_*.so.2``): ``runtime.security.tarwalk``
writes archives with numeric owners and names parsed from the container's files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from runtime import syscalls as sc
from runtime.caps import effective_set
from runtime.enter import join_namespaces, run_in_child
from runtime.sandbox import drop_privileges
from runtime.state import is_running


def drop_to_container_caps(cfg: dict[str, Any]) -> None:
    """The capability set (bounding included) of the container's own processes, root.
    Everything it needs is imported above: it runs inside the container's root."""
    host = cfg.get("HostConfig") or {}
    privileged = bool(host.get("Privileged"))
    caps = effective_set(host.get("CapAdd") or [], host.get("CapDrop") or [], privileged)
    drop_privileges(caps, privileged, 0, 0, [0])


def run_confined(cfg: dict[str, Any], enter_root: Callable[[], None],
                 body: Callable[[], int], join_running: bool = True) -> int:
    """Run ``body`` (its return value is the exit code) inside the container's root.

    ``join_running``: a running container's namespaces are joined (all five); else, or
    when it is stopped, ``enter_root`` makes the root ours in a private mount namespace,
    inside a new pid namespace.
    """
    pid = cfg["State"].get("Pid") if is_running(cfg) else 0
    join = bool(join_running and pid)

    def outer() -> int:
        if join:
            join_namespaces(pid)
        else:
            sc.unshare(sc.CLONE_NEWPID)
            enter_root()

        def inner() -> int:
            if join:
                os.chdir("/")
            drop_to_container_caps(cfg)
            return body()

        return run_in_child(inner)

    return run_in_child(outer)
