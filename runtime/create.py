"""``box create``: flags -> a Docker-shaped state directory, validated before anything
is created, and nothing left behind when a step fails."""

from __future__ import annotations

import contextlib
import os
import sys

from runtime.errors import BoxError, Conflict, DamagedState, InvalidArgument
from runtime.flags import Namespace
from runtime.hostconfig import drop_unsupported, host_config
from runtime.paths import Paths
from runtime.state import Store, new_container_doc, new_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

    from runtime.images.store import Image

_ADJECTIVES = ("admiring", "bold", "brave", "clever", "eager", "focused", "gallant",
               "happy", "jolly", "keen", "lucid", "nifty", "quirky", "serene", "vibrant",
               "wizardly", "zealous", "upbeat", "tender", "sharp")
_NAMES = ("babbage", "curie", "darwin", "einstein", "feynman", "galileo", "hopper",
          "knuth", "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie",
          "shannon", "thompson", "turing", "wozniak", "yalow", "zhukovsky")


def _generated_name() -> str:
    pick = os.urandom(2)  # not `random`: ~1.5 ms of import on the `box run` path
    return f"{_ADJECTIVES[pick[0] % len(_ADJECTIVES)]}_{_NAMES[pick[1] % len(_NAMES)]}"


def _reserve_generated_name(store: Store, cid: str) -> str:
    """Like docker: a few random names, then a random one with a number appended."""
    for attempt in range(10):
        name = _generated_name()
        if attempt > 5:
            name += str(int.from_bytes(os.urandom(2), "big") % 10000)
        try:
            store.reserve_name(name, cid)
            return name
        except Conflict:
            continue
    name = f"{_generated_name()}_{cid[:12]}"
    store.reserve_name(name, cid)
    return name


def parse_env_files(files: list[str]) -> list[str]:
    env: list[str] = []
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise InvalidArgument(f"open {path}: {e.strerror.lower()}") from None
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                value = os.environ.get(line)
                if value is None:
                    continue
                line = f"{line}={value}"
            env.append(line)
    return env


def _env_from_flags(values: list[str]) -> list[str]:
    env = []
    for item in values:
        if "=" not in item:
            # Docker: -e NAME takes the value from the caller's environment, if set.
            if item in os.environ:
                env.append(f"{item}={os.environ[item]}")
            continue
        if item.startswith("="):
            raise InvalidArgument(f'invalid environment variable: {item}')
        env.append(item)
    return env


def _merge_env(image_env: list[str], overrides: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*image_env, *overrides]:
        key = item.split("=", 1)[0]
        merged[key] = item
    return list(merged.values())


def _labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f'invalid argument "{item}" for "-l, --label" flag: empty label '
                                  'name')
        labels[key] = value
    return labels


def _hosts_file(network: str, hostname: str) -> str:
    if network == "host":
        with contextlib.suppress(OSError):
            with open("/etc/hosts") as f:
                return f.read()
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
            "ff02::2\tip6-allrouters\n")


def _network_flags(paths: Paths, opts: Namespace, host: dict[str, Any], img_cfg: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """(HostConfig additions, NetworkSettings, ExposedPorts); none/host without network
    flags import nothing of runtime.network (the fast path of bench/runtime_start.py)."""
    if host["NetworkMode"] in ("none", "host") and not (
            opts.publish or opts.publish_all or opts.ip or opts.network_alias or opts.link
            or opts.expose):
        return {}, None, dict(img_cfg.get("ExposedPorts") or {})
    from runtime.network.config import network_config

    return network_config(paths, opts, host, img_cfg)


def _mount_flags(opts: Namespace) -> list[dict[str, Any]]:
    if not (opts.volume or opts.mount or opts.tmpfs):
        return []
    from runtime.volumes import parse_all

    return parse_all(opts.volume, opts.mount, opts.tmpfs)


def _extra_hosts(values: list[str]) -> list[str]:
    """``--add-host name:ip``, the address checked (IPv4 or IPv6)."""
    if not values:
        return []
    import socket

    out = []
    for item in values:
        name, sep, ip = item.partition(":")
        ok = bool(sep and name and ip)
        if ok:
            try:
                socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip.strip("[]"))
            except OSError:
                ok = False
        if not ok:
            raise InvalidArgument(f'invalid argument "{item}" for "--add-host" flag: want NAME:IP')
        out.append(f"{name}:{ip.strip('[]')}")
    return out


def _healthcheck(opts: Namespace, image_check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Without a --health-* flag the image's check as is (runtime.health not imported)."""
    if not (opts.no_healthcheck or opts.health_cmd or opts.health_interval or opts.health_timeout
            or opts.health_retries or opts.health_start_period or opts.health_start_interval):
        return image_check or None
    from runtime.health import healthcheck_config

    return healthcheck_config(opts, image_check)


def _resolv_conf(opts: Namespace | None = None) -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from a netns)."""
    if opts is not None and (opts.dns or opts.dns_search or opts.dns_option):
        from runtime.network.hosts import resolv_conf

        for server in opts.dns:
            import socket

            try:
                socket.inet_pton(socket.AF_INET6 if ":" in server else socket.AF_INET, server)
            except OSError:
                raise InvalidArgument(f"{server} is not an ip address (--dns)") from None
        return resolv_conf(opts.dns, opts.dns_search, opts.dns_option)
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    kept = [ln for ln in lines if not (ln.startswith("nameserver") and
                                        (" 127." in ln or " ::1" in ln))]
    return "\n".join(kept) + "\n"


class Plan:
    """What the flags and the image decided, between ``resolve`` and ``write``. A plain
    class with slots: ``dataclasses`` costs import time on the `box run` path."""

    __slots__ = ("cid", "entrypoint", "cmd", "env", "exposed", "extra_hosts", "healthcheck",
                 "host", "hostname", "image", "img_cfg", "joined", "labels", "mounts",
                 "net_settings")

    def __init__(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self, key, value)


def validate(opts: Namespace) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Every flag checked against the host, nothing looked up or made yet:
    (HostConfig, mounts, extra hosts)."""
    from runtime.cgroups import open_driver
    from runtime.spec import resources_from_hostconfig

    host = host_config(opts)
    driver = open_driver()
    resources = resources_from_hostconfig(host)
    driver.validate(resources)
    for warning in driver.warnings(resources):
        print(f"WARNING: {warning}", file=sys.stderr)
    drop_unsupported(host, resources, driver.host().features)
    return host, _mount_flags(opts), _extra_hosts(opts.add_host)


def resolve(paths: Paths, opts: Namespace, host: dict[str, Any], mounts: list[dict[str, Any]],
            extra_hosts: list[str], image: Image | None = None) -> Plan:
    """What the flags name: the image (and what it brings: command, env, labels, ports,
    healthcheck), the network, a joined container, the hostname. ``image`` is given
    instead of looked up by ``box build`` (a RUN step's image is not in the store)."""
    if image is None:
        from runtime.images.store import ImageStore

        image = ImageStore(paths.root).resolve(opts.image)
    for layer_dir in image.layer_dirs:  # else overlayfs fails later with a bare ENOENT
        if not os.path.isdir(layer_dir):
            raise DamagedState(f"image {opts.image}: layer {layer_dir} is missing from the "
                               "image store (remove the image and load or pull it again)")
    img_cfg = image.config or {}
    net_host, net_settings, exposed = _network_flags(paths, opts, host, img_cfg)
    host.update(net_host)
    host.update(Binds=list(opts.volume) or None,
                Tmpfs={t.partition(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
                Dns=list(opts.dns), DnsSearch=list(opts.dns_search),
                DnsOptions=list(opts.dns_option), ExtraHosts=extra_hosts or None)
    entrypoint = list(img_cfg.get("Entrypoint") or [])
    cmd = list(img_cfg.get("Cmd") or [])
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = []
    if opts.command:
        cmd = list(opts.command)
    if not entrypoint + cmd:
        raise InvalidArgument("no command specified")  # moby's wording since 2019
    env = _merge_env(list(img_cfg.get("Env") or []),
                     parse_env_files(opts.env_file) + _env_from_flags(opts.env))
    labels = dict(img_cfg.get("Labels") or {})
    labels.update(_labels(opts.label))
    cid = new_id()
    hostname = opts.hostname or cid[:12]
    if host["NetworkMode"] == "host" and not opts.hostname:
        hostname = os.uname().nodename
    joined = None  # --network container:X shares X's hostname, hosts and resolv.conf
    if host["NetworkMode"].startswith("container:"):
        joined = Store(paths).load(host["NetworkMode"][10:])
        hostname = joined["Config"].get("Hostname") or hostname
    return Plan(cid=cid, entrypoint=entrypoint, cmd=cmd, env=env, exposed=exposed,
                extra_hosts=extra_hosts, healthcheck=_healthcheck(opts, img_cfg.get("Healthcheck")),
                host=host, hostname=hostname, image=image, img_cfg=img_cfg, joined=joined,
                labels=dict(sorted(labels.items())),  # Go marshals maps with sorted keys
                mounts=mounts, net_settings=net_settings)


def write(paths: Paths, opts: Namespace, plan: Plan) -> None:
    """The container's directories and the files it will see (hostname, hosts,
    resolv.conf)."""
    cdir = paths.container_dir(plan.cid)
    os.makedirs(cdir)
    overlay = paths.overlay_dir(plan.cid)
    os.makedirs(overlay, mode=0o700)  # its diff may hold setuid files: root's alone
    for sub in ("diff", "work", "merged", "empty"):
        os.makedirs(os.path.join(overlay, sub))
    hosts = _hosts_file(plan.host["NetworkMode"], plan.hostname) + "".join(
        f"{e.partition(':')[2]}\t{e.partition(':')[0]}\n" for e in plan.extra_hosts)
    for filename, text in (("hostname", plan.hostname + "\n"), ("hosts", hosts),
                           ("resolv.conf", _resolv_conf(opts))):
        with open(os.path.join(cdir, filename), "w") as f:
            f.write(text)


def config_v2(paths: Paths, opts: Namespace, plan: Plan, name: str) -> dict[str, Any]:
    """The container's ``config.v2.json`` (HostConfig included: ``Store.save`` splits it
    off into hostconfig.json), from the flags and what ``resolve`` found."""
    img_cfg = plan.img_cfg
    config = {
        "Hostname": plan.hostname,
        "Domainname": "",
        "User": opts.user or img_cfg.get("User") or "",
        "AttachStdin": bool(opts.interactive and not opts.detach),
        "AttachStdout": not opts.detach,
        "AttachStderr": not opts.detach,
        "Tty": bool(opts.tty),
        "OpenStdin": bool(opts.interactive),
        "StdinOnce": bool(opts.interactive and not opts.detach),
        "Env": plan.env,
        "Cmd": plan.cmd or None,
        "Image": opts.image,
        "WorkingDir": opts.workdir or img_cfg.get("WorkingDir") or "",
        "Entrypoint": plan.entrypoint or None,
        "Labels": plan.labels,
        "StopSignal": opts.stop_signal or img_cfg.get("StopSignal") or "SIGTERM",
        "StopTimeout": opts.stop_timeout,
        # from the image, as docker copies them: -P publishes ExposedPorts,
        # Volumes become anonymous volumes
        **{k: img_cfg[k] for k in ("ExposedPorts", "Volumes") if img_cfg.get(k)},
        # the image's, under the --health-* flags: drives State.Health (runtime.health)
        **({"Healthcheck": plan.healthcheck} if plan.healthcheck else {}),
    }
    if plan.exposed:
        config["ExposedPorts"] = plan.exposed
    argv = plan.entrypoint + plan.cmd
    # overlayfs needs one lower dir; an image without layers gets an empty one
    lower = [str(d) for d in plan.image.layer_dirs] or [
        os.path.join(paths.overlay_dir(plan.cid), "empty")]
    cfg = new_container_doc(paths.container_dir(plan.cid), plan.cid, name, argv, config,
                            plan.image.id, lower, plan.host)
    if plan.net_settings is not None:
        cfg["NetworkSettings"] = plan.net_settings
    if plan.joined is not None:
        for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
            cfg[key] = plan.joined.get(key, "")
    if plan.mounts or img_cfg.get("Volumes"):
        from runtime.volumes import mount_points

        cfg["MountPoints"] = mount_points(paths, plan.mounts, img_cfg.get("Volumes") or {})
    return cfg


def create(paths: Paths, opts: Namespace, image: Image | None = None) -> dict[str, Any]:
    """validate -> resolve -> write -> save: every flag is checked before anything is
    made, and on any failure what was made is removed."""
    host, mounts, extra_hosts = validate(opts)
    plan = resolve(paths, opts, host, mounts, extra_hosts, image)
    store = Store(paths)
    name = opts.name or _reserve_generated_name(store, plan.cid)
    if opts.name:
        store.reserve_name(name, plan.cid)
    try:
        write(paths, opts, plan)
        cfg = config_v2(paths, opts, plan, name)
        store.save(cfg)
    except BaseException as e:
        store.delete({"ID": plan.cid, "Name": name})
        if isinstance(e, OSError):
            raise BoxError(f"cannot create container {name}: {e}") from None
        raise
    from runtime.journal import container_event

    container_event(paths.root, cfg, "create")
    return cfg
