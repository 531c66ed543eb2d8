"""``box volume create|ls|inspect|rm|prune``."""

from __future__ import annotations

import sys
from typing import Any

from runtime.errors import BoxError, NotFound
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store
from runtime.volumes import VolumeStore

VOL_TABLE = "table {{.Driver}}\t{{.Name}}"
VOL_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT",
               "Scope": "SCOPE", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


class _VolRow:
    def __init__(self, rec: dict[str, Any]) -> None:
        self.Driver = rec["Driver"]
        self.Name = rec["Name"]
        self.Mountpoint = rec["Mountpoint"]
        self.Scope = rec["Scope"]
        self.CreatedAt = rec["CreatedAt"]
        self.Labels = ",".join(f"{k}={v}" for k, v in sorted((rec.get("Labels") or {}).items()))


def add_volume_create(p: FlagParser) -> None:
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("--label", action="append", default=[], help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("name", nargs="?", metavar="VOLUME")


def cmd_volume_create(paths: Paths, args: Namespace) -> int:
    if args.driver != "local":
        raise BoxError(f'error looking up volume plugin {args.driver}: plugin "{args.driver}" not '
                       'found')
    if args.opt:
        raise BoxError(f"volume options are not supported by this build: {args.opt[0]}")
    labels = dict(item.partition("=")[::2] for item in args.label)
    rec = VolumeStore(paths.root).create(args.name or "", labels=labels)
    print(rec["Name"])
    return 0


def add_volume_ls(p: FlagParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")


def cmd_volume_ls(paths: Paths, args: Namespace) -> int:
    from runtime.format import render_format

    volumes = VolumeStore(paths.root)
    recs = volumes.all()
    containers = None
    for f in args.filter:
        key, _, value = f.partition("=")
        if key == "name":
            recs = [r for r in recs if value in r["Name"]]
        elif key == "dangling":
            containers = containers if containers is not None else list(Store(paths).all())
            want = value.lower() in ("1", "true")
            recs = [r for r in recs if (not volumes.users(r["Name"], containers)) == want]
        elif key == "label":
            k, eq, v = value.partition("=")
            recs = [r for r in recs if k in r["Labels"] and (not eq or r["Labels"][k] == v)]
        else:
            raise BoxError(f"invalid filter '{key}'")
    if args.quiet:
        for r in recs:
            print(r["Name"])
        return 0
    sys.stdout.write(render_format(args.format, VOL_TABLE, [_VolRow(r) for r in recs], VOL_HEADERS))
    return 0


def add_volume_inspect(p: FlagParser) -> None:
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_volume_inspect(paths: Paths, args: Namespace) -> int:
    volumes = VolumeStore(paths.root)
    out, status = [], 0
    for name in args.names:
        try:
            rec = volumes.get(name)
            out.append({k: v for k, v in rec.items() if k != "Anonymous"})
        except NotFound as e:
            print(f"box: Error: {e}", file=sys.stderr)
            status = 1
    from runtime.inspect import print_inspected

    print_inspected(out, args.format)
    return status


def add_volume_rm(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force the removal of one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")


def cmd_volume_rm(paths: Paths, args: Namespace) -> int:
    volumes = VolumeStore(paths.root)
    containers = list(Store(paths).all())
    status = 0
    for name in args.names:
        try:
            volumes.remove(name, containers)
            print(name)
        except NotFound as e:
            if not args.force:
                print(f"box: Error response from daemon: {e}", file=sys.stderr)
                status = 1
        except BoxError as e:
            print(f"box: Error response from daemon: {e}", file=sys.stderr)
            status = 1
    return status


def add_volume_prune(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("-f", "--force", action="store_true")


def cmd_volume_prune(paths: Paths, args: Namespace) -> int:
    removed = prune_volumes(paths, args.all)
    if removed:
        print("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    print("Total reclaimed space: 0B" if not removed else f"Deleted {len(removed)} volumes")
    return 0


def prune_volumes(paths: Paths, named_too: bool) -> list[str]:
    """Unused anonymous volumes (named ones too with ``named_too``, ``--all``), as docker
    23+ does, removed; their names (``box volume prune`` and ``box system prune``)."""
    volumes = VolumeStore(paths.root)
    containers = list(Store(paths).all())
    removed = []
    for rec in volumes.all():
        if (named_too or rec.get("Anonymous")) and not volumes.users(rec["Name"], containers):
            volumes.remove(rec["Name"], containers)
            removed.append(rec["Name"])
    return removed
