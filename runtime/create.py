"""``box create``: flags -> a Docker-shaped state directory, validated before anything
is created, and nothing left behind when a step fails."""

from __future__ import annotations

import contextlib
import os
import sys

from runtime import units
from runtime.errors import BoxError, Conflict, DamagedState, InvalidArgument
from runtime.flags import Namespace
from runtime.paths import Paths
from runtime.state import Store, new_id
from runtime.timeutil import rfc3339nano

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

DEFAULT_NETWORK = "bridge"  # as docker; BOX_DEFAULT_NETWORK overrides (e.g. "none")
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
            raise InvalidArgument(f'invalid argument "{item}" for "-l, --label" flag: empty label name')
        labels[key] = value
    return labels


def _restart_policy(text: str | None, auto_remove: bool) -> dict[str, Any]:
    if not text:
        return {"Name": "no", "MaximumRetryCount": 0}
    name, _, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f'invalid restart policy "{text}"')
    if count and name != "on-failure":
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count can only be used with \'on-failure\'')
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count must be an integer') from None
    if retries < 0:
        raise InvalidArgument(f'invalid restart policy "{text}": maximum retry count cannot be negative')
    if auto_remove and name != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    return {"Name": name, "MaximumRetryCount": retries}


def _int_flag(value: str | None, flag: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseInt: parsing "{value}": invalid syntax') from None


# HostConfig key -> Resources field that docker zeroes (after its warning) when the
# kernel lacks the feature (daemon verifyPlatformContainerResources).
_DROPPABLE = {"MemoryReservation": "memory_reservation", "OomKillDisable": "oom_kill_disable",
              "CpuShares": "cpu_shares", "CpuPeriod": "cpu_period", "CpuQuota": "cpu_quota",
              "CpusetCpus": "cpuset_cpus", "CpusetMems": "cpuset_mems",
              "BlkioWeight": "blkio_weight", "BlkioDeviceReadBps": "blkio_device_read_bps",
              "BlkioDeviceWriteBps": "blkio_device_write_bps",
              "BlkioDeviceReadIOps": "blkio_device_read_iops",
              "BlkioDeviceWriteIOps": "blkio_device_write_iops"}


def _drop_unsupported(host: dict[str, Any], res: Any, features: frozenset[str]) -> None:
    """What the kernel cannot do is not recorded as if it were applied."""
    from runtime.cgroups.base import applicable

    applied = applicable(res, features)
    for key, field in _DROPPABLE.items():
        if getattr(res, field) and not getattr(applied, field):
            host[key] = None if isinstance(host.get(key), list) else type(host[key])()


def _devices(values: list[str]) -> list[dict[str, str]]:
    if not values:
        return []
    from runtime.security.devices import device_mappings

    return device_mappings(values)


def _security_opts(values: list[str]) -> list[str] | None:
    if not values:
        return None
    from runtime.security.seccomp import parse_security_opts

    return parse_security_opts(values) or None


def _cgroupns_mode(value: str | None) -> str:
    """Docker's default: a private cgroup namespace on a v2 host, the host's on v1."""
    if value in (None, ""):
        return "private" if os.path.isfile("/sys/fs/cgroup/cgroup.controllers") else "host"
    if value not in ("host", "private"):
        raise InvalidArgument(f'invalid argument "{value}" for "--cgroupns" flag: '
                              'must be "host" or "private"')
    return value


def host_config(opts: Namespace) -> dict[str, Any]:
    """Every flag is parsed here, before anything exists; a bad value raises."""
    network = opts.network or os.environ.get("BOX_DEFAULT_NETWORK") or DEFAULT_NETWORK
    if network.startswith("container:") and not network[10:]:
        raise InvalidArgument(f'invalid network mode "{network}": container name missing')
    if opts.log_driver not in ("json-file",):
        raise InvalidArgument(f'logger: no log driver named \'{opts.log_driver}\' is registered (supported: json-file)')
    log_opts = {}
    for item in opts.log_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f'invalid argument "{item}" for "--log-opt" flag: expected key=value')
        log_opts[key] = value
    from runtime.logging.jsonfile import parse_log_opts

    parse_log_opts(log_opts)
    from runtime.caps import effective_set

    effective_set(opts.cap_add, opts.cap_drop, opts.privileged)  # unknown names fail here
    memory = units.parse_size(opts.memory, "-m, --memory") if opts.memory else 0
    host: dict[str, Any] = {
        "Binds": None,
        "NetworkMode": network,
        "RestartPolicy": _restart_policy(opts.restart, opts.rm),
        "AutoRemove": bool(opts.rm),
        "LogConfig": {"Type": "json-file", "Config": log_opts},
        "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None,
        "Privileged": bool(opts.privileged),
        "Devices": _devices(opts.device),
        "SecurityOpt": _security_opts(opts.security_opt),
        "ReadonlyRootfs": bool(opts.read_only),
        "Init": bool(opts.init),
        "CgroupnsMode": _cgroupns_mode(opts.cgroupns),
        "ShmSize": units.parse_size(opts.shm_size, "--shm-size") if opts.shm_size else 64 * 1024 * 1024,
        "Memory": memory,
        "MemorySwap": units.parse_memory_swap(opts.memory_swap) if opts.memory_swap else 0,
        "MemoryReservation": units.parse_size(opts.memory_reservation, "--memory-reservation") if opts.memory_reservation else 0,
        "OomKillDisable": bool(opts.oom_kill_disable),
        "NanoCpus": units.parse_cpus(opts.cpus) if opts.cpus else 0,
        "CpuShares": _int_flag(opts.cpu_shares, "-c, --cpu-shares"),
        "CpuPeriod": _int_flag(opts.cpu_period, "--cpu-period"),
        "CpuQuota": _int_flag(opts.cpu_quota, "--cpu-quota"),
        "CpusetCpus": units.parse_cpuset(opts.cpuset_cpus, "--cpuset-cpus") if opts.cpuset_cpus else "",
        "CpusetMems": units.parse_cpuset(opts.cpuset_mems, "--cpuset-mems") if opts.cpuset_mems else "",
        "PidsLimit": _int_flag(opts.pids_limit, "--pids-limit") or None,
        "BlkioWeight": _int_flag(opts.blkio_weight, "--blkio-weight"),
    }
    for key, values, flag, unit in (
        ("BlkioDeviceReadBps", opts.device_read_bps, "--device-read-bps", "bps"),
        ("BlkioDeviceWriteBps", opts.device_write_bps, "--device-write-bps", "bps"),
        ("BlkioDeviceReadIOps", opts.device_read_iops, "--device-read-iops", "iops"),
        ("BlkioDeviceWriteIOps", opts.device_write_iops, "--device-write-iops", "iops"),
    ):
        rates = [units.parse_device_rate(v, flag, unit) for v in values]
        host[key] = [{"Path": r.path, "Rate": r.rate} for r in rates] or None
    return host


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


def create(paths: Paths, opts: Namespace) -> dict[str, Any]:
    """Validate every flag, then write the state; on any failure remove what was made."""
    from runtime.cgroups import open_driver
    from runtime.images.store import ImageStore
    from runtime.spec import resources_from_hostconfig

    host = host_config(opts)
    driver = open_driver()
    resources = resources_from_hostconfig(host)
    driver.validate(resources)
    for warning in driver.warnings(resources):
        print(f"WARNING: {warning}", file=sys.stderr)
    _drop_unsupported(host, resources, driver.host().features)
    image = ImageStore(paths.root).resolve(opts.image)
    for layer_dir in image.layer_dirs:  # else overlayfs fails later with a bare ENOENT
        if not os.path.isdir(layer_dir):
            raise DamagedState(f"image {opts.image}: layer {layer_dir} is missing from the "
                               "image store (remove the image and load or pull it again)")
    img_cfg = image.config or {}
    net_host, net_settings, exposed = _network_flags(paths, opts, host, img_cfg)
    host.update(net_host)
    mounts = _mount_flags(opts)
    extra_hosts = _extra_hosts(opts.add_host)
    host.update(Binds=list(opts.volume) or None, Tmpfs={t.partition(":")[0]: t.partition(":")[2] for t in opts.tmpfs} or None,
                Dns=list(opts.dns), DnsSearch=list(opts.dns_search), DnsOptions=list(opts.dns_option),
                ExtraHosts=extra_hosts or None)
    entrypoint = list(img_cfg.get("Entrypoint") or [])
    cmd = list(img_cfg.get("Cmd") or [])
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = []
    if opts.command:
        cmd = list(opts.command)
    argv = entrypoint + cmd
    if not argv:
        raise InvalidArgument("no command specified")  # moby's wording since 2019
    env = _merge_env(list(img_cfg.get("Env") or []),
                     parse_env_files(opts.env_file) + _env_from_flags(opts.env))
    labels = dict(img_cfg.get("Labels") or {})
    labels.update(_labels(opts.label))
    labels = dict(sorted(labels.items()))  # Go marshals maps with sorted keys
    healthcheck = _healthcheck(opts, img_cfg.get("Healthcheck"))
    cid = new_id()
    hostname = opts.hostname or cid[:12]
    if host["NetworkMode"] == "host" and not opts.hostname:
        hostname = os.uname().nodename
    store = Store(paths)
    joined = None  # --network container:X shares X's hostname, hosts and resolv.conf
    if host["NetworkMode"].startswith("container:"):
        joined = store.load(host["NetworkMode"][10:])
        hostname = joined["Config"].get("Hostname") or hostname
    name = opts.name or _reserve_generated_name(store, cid)
    if opts.name:
        store.reserve_name(name, cid)
    cdir = paths.container_dir(cid)
    try:
        os.makedirs(cdir)
        overlay = paths.overlay_dir(cid)
        os.makedirs(overlay, mode=0o700)  # its diff may hold setuid files: root's alone
        for sub in ("diff", "work", "merged", "empty"):
            os.makedirs(os.path.join(overlay, sub))
        for filename, text in (("hostname", hostname + "\n"),
                               ("hosts", _hosts_file(host["NetworkMode"], hostname)
                                + "".join(f"{e.partition(':')[2]}\t{e.partition(':')[0]}\n"
                                          for e in extra_hosts)),
                               ("resolv.conf", _resolv_conf(opts))):
            with open(os.path.join(cdir, filename), "w") as f:
                f.write(text)
        now = rfc3339nano()
        cfg: dict[str, Any] = {
            "ID": cid,
            "Created": now,
            "Path": argv[0],
            "Args": argv[1:],
            "Config": {
                "Hostname": hostname,
                "Domainname": "",
                "User": opts.user or img_cfg.get("User") or "",
                "AttachStdin": bool(opts.interactive and not opts.detach),
                "AttachStdout": not opts.detach,
                "AttachStderr": not opts.detach,
                "Tty": bool(opts.tty),
                "OpenStdin": bool(opts.interactive),
                "StdinOnce": bool(opts.interactive and not opts.detach),
                "Env": env,
                "Cmd": cmd or None,
                "Image": opts.image,
                "WorkingDir": opts.workdir or img_cfg.get("WorkingDir") or "",
                "Entrypoint": entrypoint or None,
                "Labels": labels,
                "StopSignal": opts.stop_signal or img_cfg.get("StopSignal") or "SIGTERM",
                "StopTimeout": opts.stop_timeout,
                # from the image, as docker copies them: -P publishes ExposedPorts,
                # Volumes become anonymous volumes
                **{k: img_cfg[k] for k in ("ExposedPorts", "Volumes") if img_cfg.get(k)},
                # the image's, under the --health-* flags: drives State.Health (runtime.health)
                **({"Healthcheck": healthcheck} if healthcheck else {}),
            },
            "Image": image.id,
            "State": {"Status": "created", "Running": False, "Paused": False,
                      "Restarting": False, "OOMKilled": False, "RemovalInProgress": False,
                      "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                      "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            "Name": "/" + name.lstrip("/"),
            "RestartCount": 0,
            "Driver": "overlay2",
            "LogPath": os.path.join(cdir, f"{cid}-json.log"),
            "HostnamePath": os.path.join(cdir, "hostname"),
            "HostsPath": os.path.join(cdir, "hosts"),
            "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
            "HasBeenManuallyStopped": False,
            # overlayfs needs one lower dir; an image without layers gets an empty one
            "Box": {"LowerDirs": [str(d) for d in image.layer_dirs]
                    or [os.path.join(overlay, "empty")]},
            "HostConfig": host,
        }
        if exposed:
            cfg["Config"]["ExposedPorts"] = exposed
        if net_settings is not None:
            cfg["NetworkSettings"] = net_settings
        if joined is not None:
            for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
                cfg[key] = joined.get(key, "")
        if mounts or img_cfg.get("Volumes"):
            from runtime.volumes import mount_points

            cfg["MountPoints"] = mount_points(paths, mounts, img_cfg.get("Volumes") or {})
        store.save(cfg)
        return cfg
    except BaseException as e:
        store.delete({"ID": cid, "Name": name})
        if isinstance(e, OSError):
            raise BoxError(f"cannot create container {name}: {e}") from None
        raise
