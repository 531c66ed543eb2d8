"""``box system df``: docker's disk-usage summary (TYPE TOTAL ACTIVE SIZE RECLAIMABLE)."""

from __future__ import annotations

import os
import sys

from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


class _DfRow:
    def __init__(self, kind: str, total: int, active: int, size: int, reclaimable: int,
                 show_percent: bool = True) -> None:
        from runtime.format.human import human_size

        self.Type = kind
        self.TotalCount = str(total)
        self.Active = str(active)
        self.Size = human_size(size)
        pct = f" ({int(100 * reclaimable / size) if size else 0}%)" if show_percent else ""
        self.Reclaimable = human_size(reclaimable) + pct


def add_system_df(p: FlagParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="Show detailed information on space usage")
    p.add_argument("--format")


def cmd_system_df(paths: Paths, args: Namespace) -> int:
    """Images count shared layers once; containers are their writable layer (``diff``);
    volumes are ``<root>/volumes/<name>/_data`` (docker's layout), active when a
    container mounts them."""
    from formats.layers import tree_size, upper_dir
    from runtime.format import render_format
    from runtime.images.store import ImageStore
    from runtime.images.usage import images_usage
    from runtime.state import Store, is_running, report_damaged

    containers = list(Store(paths).all())
    img = images_usage(ImageStore(paths.root), (c.get("Image", "") for c in containers),
                       report=report_damaged)
    c_sizes = {c["ID"]: tree_size(upper_dir(paths.root, c["ID"])) for c in containers}
    running = {c["ID"] for c in containers if is_running(c)}
    vol_root = os.path.join(paths.root, "volumes")
    volumes = sorted(n for n in (os.listdir(vol_root) if os.path.isdir(vol_root) else [])
                     if os.path.isdir(os.path.join(vol_root, n, "_data")))
    v_sizes = {n: tree_size(os.path.join(vol_root, n, "_data")) for n in volumes}
    mounted = {m.get("Name") for c in containers
               for m in (c.get("MountPoints") or {}).values() if isinstance(m, dict)}
    v_active = [n for n in volumes if n in mounted]
    rows = [
        _DfRow("Images", img.total, img.active, img.size, img.reclaimable),
        _DfRow("Containers", len(containers), len(running), sum(c_sizes.values()),
               sum(s for cid, s in c_sizes.items() if cid not in running)),
        _DfRow("Local Volumes", len(volumes), len(v_active), sum(v_sizes.values()),
               sum(s for n, s in v_sizes.items() if n not in v_active)),
        _DfRow("Build Cache", 0, 0, 0, 0, show_percent=False),
    ]
    sys.stdout.write(render_format(args.format, DF_TABLE, rows, DF_HEADERS))
    return 0


# -- prune --------------------------------------------------------------------------
def _confirm(lines: list[str]) -> bool:
    """docker's prompt; anything but y/yes on stdin cancels (exit 0, nothing removed)."""
    sys.stdout.write("\n".join(lines) + "\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def prune_containers(paths: Paths, filters: list[str] = ()) -> tuple[list[str], int]:
    """Every stopped container removed (``--filter until=|label=|label!=`` as docker's
    prune filters, the same rules as ``image prune``): (ids, bytes of their writable
    layers)."""
    from formats.layers import tree_size, upper_dir
    from runtime.commands.image_prune import prune_keep
    from runtime.containers import Containers
    from runtime.errors import BoxError
    from runtime.state import is_running

    keep = prune_keep(list(filters))
    containers = Containers(paths)
    removed, freed = [], 0
    for cfg in list(containers.store.all()):
        if is_running(cfg) or cfg["State"].get("Status") == "paused":
            continue
        if keep(cfg["ID"], {"created": cfg.get("Created"), "config": cfg.get("Config")}):
            continue
        size = tree_size(upper_dir(paths.root, cfg["ID"]))
        try:
            containers.remove(cfg["ID"])
        except BoxError as e:  # started or removed meanwhile: docker skips it too
            print(f"box: {e}", file=sys.stderr)
            continue
        removed.append(cfg["ID"])
        freed += size
    return removed, freed


def _section(title: str, items: list[str]) -> None:
    if items:
        sys.stdout.write(f"{title}:\n" + "".join(f"{i}\n" for i in items) + "\n")


def add_container_prune(p: FlagParser) -> None:
    p.add_argument("--filter", action="append", default=[],
                   help='Provide filter values (e.g. "until=<timestamp>")')
    p.add_argument("-f", "--force", action="store_true")


def cmd_container_prune(paths: Paths, args: Namespace) -> int:
    from runtime.commands.image_prune import prune_keep
    from runtime.format.human import human_size

    prune_keep(args.filter)  # a bad filter fails before the prompt
    if not args.force and not _confirm(["WARNING! This will remove all stopped containers."]):
        return 0
    removed, freed = prune_containers(paths, args.filter)
    _section("Deleted Containers", removed)
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0


def add_system_prune(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused images not just dangling ones")
    p.add_argument("--filter", action="append", default=[],
                   help='Provide filter values (e.g. "label=<key>=<value>")')
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")


def cmd_system_prune(paths: Paths, args: Namespace) -> int:
    """docker's order: containers, networks, volumes, images (and the build cache,
    which box keeps as image configs only: nothing to reclaim there)."""
    from runtime.commands.image_prune import prune_keep
    from runtime.commands.network import prune_networks
    from runtime.commands.volume import prune_volumes
    from runtime.format.human import human_size
    from runtime.images.store import ImageStore
    from runtime.images.usage import prune
    from runtime.state import Store

    keep = prune_keep(args.filter)  # a bad filter fails before the prompt
    if not args.force:
        warn = ["WARNING! This will remove:", "  - all stopped containers",
                "  - all networks not used by at least one container"]
        if args.volumes:
            warn.append("  - all anonymous volumes not used by at least one container")
        warn += ["  - all images without at least one container associated to them"
                 if args.all else "  - all dangling images",
                 "  - all build cache" if args.all else "  - unused build cache", ""]
        if not _confirm(warn):
            return 0
    removed, freed = prune_containers(paths, args.filter)
    _section("Deleted Containers", removed)
    _section("Deleted Networks", prune_networks(paths))
    if args.volumes:
        _section("Deleted Volumes", prune_volumes(paths, False))
    used = {c.get("Image") for c in Store(paths).all()}
    lines, image_bytes = prune(ImageStore(paths.root), args.all,
                               lambda i: [i] if i in used else [], keep)
    _section("Deleted Images", lines)
    print(f"Total reclaimed space: {human_size(freed + image_bytes)}")
    return 0
