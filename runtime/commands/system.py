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
    p.add_argument("-v", "--verbose", action="store_true")
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
