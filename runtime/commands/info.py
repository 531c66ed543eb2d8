"""``box ps``, ``inspect``, ``logs``, ``top``: read-only views of the state directory."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from runtime.errors import BoxError, InvalidArgument, NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store, effective_state, is_running

PS_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Status": "STATUS",
              "Ports": "PORTS", "Names": "NAMES", "State": "STATE", "Labels": "LABELS",
              "Size": "SIZE", "Mounts": "MOUNTS", "Networks": "NETWORKS"}


class PsRow:
    """The fields ``docker ps --format`` knows, computed from one state file."""

    def __init__(self, cfg: dict[str, Any], trunc: bool) -> None:
        from formats.units import parse_rfc3339
        from runtime.format.human import ps_status, time_ago

        self._cfg = cfg
        state = effective_state(cfg)
        cmd = " ".join([cfg["Path"], *cfg.get("Args", [])])
        if trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        self.ID = cfg["ID"][:12] if trunc else cfg["ID"]
        self.Image = cfg["Config"].get("Image", "")
        self.Command = f'"{cmd}"'
        created = parse_rfc3339(cfg["Created"])
        self.RunningFor = time_ago(created)
        self.CreatedAt = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created / 1e9))
        self.Status = ps_status(state, time.time_ns())
        self.State = state["Status"]
        self.Ports = _ports(cfg, state)
        self.Names = cfg["Name"].lstrip("/")
        labels = cfg["Config"].get("Labels") or {}
        self.Labels = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        self.Size = ""
        self.Mounts = ""
        self.Networks = cfg["HostConfig"].get("NetworkMode", "")
        self._labels = labels

    def Label(self, key: str) -> str:
        return self._labels.get(key, "")

    def add_size(self, paths: Paths, lower_sizes: dict[str, int]) -> None:
        """docker's SIZE column: "<SizeRw> (virtual <SizeRootFs>)", both go-units
        ``HumanSizeWithPrecision(n, 3)``."""
        from runtime.format.human import human_size_precision

        lower = list((self._cfg.get("Box") or {}).get("LowerDirs") or [])
        rw, root = container_sizes(paths, self._cfg["ID"], lower, lower_sizes)
        self.Size = human_size_precision(rw, 3)
        if root > 0:
            self.Size += f" (virtual {human_size_precision(root, 3)})"


def _ports(cfg: dict[str, Any], state: dict[str, Any]) -> str:
    """Docker's PORTS column: published ports while running, exposed ones always."""
    ports = (
        (cfg.get("NetworkSettings") or {}).get("Ports") if state["Status"] in ("running", "paused")
        else None
    )
    exposed = cfg["Config"].get("ExposedPorts")
    if not ports and not exposed:
        return ""
    from runtime.network.ports import format_ports

    return format_ports(ports or {}, exposed)


def _matches(cfg: dict[str, Any], filters: list[str]) -> bool:
    by_key: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"Bad format of filter (expected name=value): {f}")
        by_key.setdefault(key, []).append(value)
    state = effective_state(cfg)
    labels = cfg["Config"].get("Labels") or {}
    for key, values in by_key.items():
        if key == "name":
            name = cfg["Name"].lstrip("/")
            ok = any(re.search(v, name) for v in values)
        elif key == "id":
            ok = any(cfg["ID"].startswith(v) for v in values)
        elif key == "status":
            valid = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
            for v in values:
                if v not in valid:
                    raise InvalidArgument(f"Invalid filter 'status={v}'")
            ok = state["Status"] in values
        elif key == "label":
            ok = all((labels.get(k) == val) if eq else (k in labels)
                     for k, eq, val in (v.partition("=") for v in values))
        elif key == "exited":
            ok = state["Status"] == "exited" and str(state.get("ExitCode")) in values
        elif key == "ancestor":
            ok = any(cfg["Config"].get("Image") == v or cfg["Image"].startswith(v) for v in values)
        elif key == "health":
            ok = ((state.get("Health") or {}).get("Status") or "none") in values
        else:
            raise InvalidArgument(f"Invalid filter '{key}'")
        if not ok:
            return False
    return True


_STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
_HEALTH = {"starting", "healthy", "unhealthy", "none"}


def _check_filters(filters: list[str]) -> None:
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise InvalidArgument(f"Bad format of filter (expected name=value): {f}")
        if key not in ("name", "id", "status", "label", "exited", "ancestor", "health"):
            raise InvalidArgument(f"Invalid filter '{key}'")
        if key == "status" and value not in _STATUSES:
            raise InvalidArgument(f"Invalid filter 'status={value}'")
        if key == "health" and value not in _HEALTH:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}")


def add_ps(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-s", "--size", action="store_true")


def cmd_ps(paths: Paths, args: Namespace) -> int:
    from runtime.format import render_format

    _check_filters(args.filter)  # a bad filter fails even when nothing would be listed
    cfgs = sorted(Store(paths).all(), key=lambda c: c["Created"], reverse=True)
    show_all = args.all or args.last >= 0 or args.latest or any(
        f.startswith(("status=", "exited=")) for f in args.filter)
    rows = [c for c in cfgs if (show_all or is_running(c)) and _matches(c, args.filter)]
    if args.latest:
        rows = rows[:1]
    elif args.last >= 0:
        rows = rows[:args.last]
    items = [PsRow(c, trunc=not args.no_trunc) for c in rows]
    if args.quiet:
        for item in items:
            print(item.ID)
        return 0
    table = PS_TABLE
    # docker/cli: -s adds SIZE to the default table; a template that uses .Size asks
    # for the sizes by itself
    if args.size or (args.format and ".Size" in args.format):
        if args.size:
            table += "\t{{.Size}}"
        lower_sizes: dict[str, int] = {}
        for item in items:
            item.add_size(paths, lower_sizes)
    sys.stdout.write(render_format(args.format, table, items, PS_HEADERS))
    return 0


def add_inspect(p: FlagParser) -> None:
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=["container", "image"])
    p.add_argument("-s", "--size", action="store_true",
                   help="Display total file sizes if the type is container")
    p.add_argument("names", nargs="+", metavar="NAME|ID")


def cmd_inspect(paths: Paths, args: Namespace) -> int:
    from runtime.inspect import container_view, image_view, print_inspected

    store = Store(paths)
    results: list[Any] = []
    status = 0
    for ref in args.names:
        try:
            if args.type != "image":
                try:
                    view = container_view(paths, store.load(store.resolve(ref)))
                    if args.size:
                        _add_sizes(paths, view)
                    results.append(view)
                    continue
                except NotFound:
                    if args.type == "container":
                        raise
            results.append(image_view(paths, ref))
        except NotFound:
            print(f"box: Error: No such object: {ref}", file=sys.stderr)
            status = 1
        except BoxError as e:  # found but unreadable (a damaged state file): say why
            print(f"box: {e}", file=sys.stderr)
            status = 1
    print_inspected(results, args.format)
    return status


def _add_sizes(paths: Paths, view: dict[str, Any]) -> None:
    """``inspect --size``: the container's own layer (SizeRw) and all of its root
    (SizeRootFs = that plus the image's layers), as docker reports them."""
    lower = [d for d in view["GraphDriver"]["Data"]["LowerDir"].split(":") if d]
    view["SizeRw"], view["SizeRootFs"] = container_sizes(paths, view["Id"], lower)


def container_sizes(paths: Paths, cid: str, lower_dirs: list[str],
                    lower_sizes: dict[str, int] | None = None) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): moby's size of the writable layer (``formats.layers``, the
    number the collector exports as ``container_fs_usage_bytes``), and that plus the
    image's layers. ``lower_sizes`` caches layer sizes across containers of one image."""
    from formats.layers import tree_size, upper_dir

    cache = {} if lower_sizes is None else lower_sizes
    rw = tree_size(upper_dir(paths.root, cid))
    for d in lower_dirs:
        if d not in cache:
            cache[d] = tree_size(d)
    return rw, rw + sum(cache[d] for d in lower_dirs)


def add_logs(p: FlagParser) -> None:
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all",
                   help="Number of lines to show from the end of the logs")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--details", action="store_true")
    p.add_argument("container")


def cmd_logs(paths: Paths, args: Namespace) -> int:
    from runtime.logging.reader import follow, format_entry, iter_entries
    from runtime.timeutil import parse_time_arg

    store = Store(paths)
    cid = store.resolve(args.container)
    cfg = store.load(cid)
    tail = None
    if args.tail != "all":
        try:
            tail = int(args.tail)
        except ValueError:
            raise InvalidArgument(f'invalid value for "tail": "{args.tail}"') from None
        if tail < 0:
            tail = None
    try:
        since = parse_time_arg(args.since) if args.since else None
        until = parse_time_arg(args.until) if args.until else None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    out = sys.stdout.buffer
    err = sys.stderr.buffer
    log_path = cfg["LogPath"]

    def emit(entry: Any) -> None:
        (err if entry.stream == "stderr" else out).write(
            format_entry(entry, args.timestamps, args.details)
        )

    for entry in iter_entries(log_path, since, until, tail):
        emit(entry)
    out.flush()
    err.flush()
    if args.follow and until is None:
        def stopped() -> bool:
            try:
                return not is_running(store.load(cid))
            except BoxError:
                return True
        for entry in follow(log_path, since, start_at_end=True, stop=stopped):
            emit(entry)
            out.flush()
            err.flush()
    return 0


def add_top(p: FlagParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs="*", metavar="ps OPTIONS")


def cmd_top(paths: Paths, args: Namespace) -> int:
    from runtime.format.table import render_table
    from runtime.top import process_rows

    store = Store(paths)
    cid = store.resolve(args.container)
    cfg = store.load(cid)
    if not is_running(cfg):
        raise BoxError(f"Container {cid} is not running")
    box = cfg.get("Box") or {}
    from runtime.cgroups import open_driver

    pids = open_driver(version=box.get("CgroupVersion")).pids(box.get("CgroupPaths") or {})
    headers, rows = process_rows(sorted(pids))
    sys.stdout.write(render_table(headers, rows))
    return 0


