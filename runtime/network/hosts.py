"""``/etc/hosts`` and ``/etc/resolv.conf`` of a container.

Name resolution between containers of a user network is done with ``/etc/hosts`` entries
(name, ``--network-alias``es, short id), rewritten in every peer when a container starts,
stops, connects or disconnects. Docker runs an embedded DNS server at 127.0.0.11 instead;
a daemonless runtime has nobody to run it, and files need no process. ``--link`` adds an
entry on the default bridge, as docker does. Files are rewritten in place: they are
bind-mounted into running containers, and a rename would leave the mount on the old inode.
"""

from __future__ import annotations

import contextlib
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BASE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n")
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # docker's, when the host has only loopback servers


def resolv_conf(dns: list[str], search: list[str], options: list[str],
                host_file: str = "/etc/resolv.conf") -> str:
    """``--dns``/``--dns-search``/``--dns-option`` over the host's file, whose loopback
    nameservers (unreachable from a network namespace) are dropped."""
    try:
        with open(host_file) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    servers = [ln.split()[1] for ln in lines if ln.startswith("nameserver") and len(ln.split()) > 1]
    servers = [s for s in servers if not s.startswith("127.") and s != "::1"]
    host_search = next((ln.split()[1:] for ln in lines if ln.startswith(("search", "domain"))), [])
    host_opts = next((ln.split()[1:] for ln in lines if ln.startswith("options")), [])
    out = [f"nameserver {s}" for s in (dns or servers or FALLBACK_DNS)]
    if search or host_search:
        out.append("search " + " ".join(search or host_search))
    if options or host_opts:
        out.append("options " + " ".join(options or host_opts))
    return "\n".join(out) + "\n"


def base_hosts(extra_hosts: list[str]) -> str:
    """The fixed part plus ``--add-host name:ip`` entries."""
    lines = [BASE]
    for item in extra_hosts or []:
        name, _, ip = item.partition(":")
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)


def _names(cfg: dict[str, Any], net: dict[str, Any]) -> list[str]:
    names = [cfg["Name"].lstrip("/")]
    for alias in net.get("Aliases") or []:
        if alias not in names:
            names.append(alias)
    short = cfg["ID"][:12]
    if short not in names:
        names.append(short)
    return names


def render(cfg: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """The whole file for ``cfg``: base, own address, links, then peers on user networks."""
    host = cfg["HostConfig"]
    nets = (cfg.get("NetworkSettings") or {}).get("Networks") or {}
    text = [base_hosts(host.get("ExtraHosts") or [])]
    hostname = cfg["Config"].get("Hostname", "")
    own = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
    if own:
        text.append(f"{own}\t{hostname}\n")
    by_name = {o["Name"].lstrip("/"): o for o in others}
    for link in host.get("Links") or []:
        target, _, alias = link.partition(":")
        peer = by_name.get(target.lstrip("/"))
        ip = (
            ((peer or {}).get("NetworkSettings") or {})
            .get("Networks", {})
            .get("bridge", {})
            .get("IPAddress")
        )
        if ip:
            names = [alias] if alias and alias != target else []
            text.append(f"{ip}\t{' '.join([*names, target, peer['ID'][:12]])}\n")
    for other in others:
        if other["ID"] == cfg["ID"]:
            continue
        for name, onet in ((other.get("NetworkSettings") or {}).get("Networks") or {}).items():
            if name == "bridge" or name not in nets or not onet.get("IPAddress"):
                continue  # the default bridge has no name resolution (docker: --link)
            text.append(f"{onet['IPAddress']}\t{' '.join(_names(other, onet))}\n")
    return "".join(text)


def write_in_place(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def refresh(store: Any, cids: set[str] | None, networks: set[str]) -> None:
    """Rewrite the hosts file of every container on one of ``networks`` (and of ``cids``)."""
    from runtime.errors import NotFound

    everyone = list(store.all())
    for cfg in everyone:
        on = set((cfg.get("NetworkSettings") or {}).get("Networks") or {})
        if (cids and cfg["ID"] in cids) or (on & networks):
            if str(cfg["HostConfig"].get("NetworkMode", "")).startswith(("container:", "host")):
                continue
            path = cfg.get("HostsPath")
            if path and os.path.exists(path):
                with contextlib.suppress(NotFound, OSError):
                    write_in_place(path, render(cfg, everyone))
