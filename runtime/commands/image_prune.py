"""``box image prune`` and its filters (``until=``, ``label=``, ``label!=``): which
images are unused and may go. ``prune_keep`` is shared with ``container prune`` and
``system prune`` (runtime/commands/system.py), so it lives apart from the verbs that
list and name images."""

from __future__ import annotations

import re
import sys

from runtime.errors import InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store


def _go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for what ``until=`` takes: ``90s``, ``10m``, ``1h30m``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f"invalid filter 'until={text}': not a timestamp or duration")
    scale = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    return int(sum(float(n) * scale[u] for n, u in parts))


def add_image_prune(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])


def prune_keep(filters: list[str]):
    """docker image prune's filters: ``until=<RFC3339 or duration>``, ``label=k[=v]``,
    ``label!=k[=v]``; returns a predicate saying which images to keep."""
    import time

    from formats.units import parse_rfc3339

    until_ns = None
    labels: list[tuple[bool, str, str | None]] = []
    for item in filters:
        key, sep, value = item.partition("=")
        if key == "until":
            try:
                until_ns = parse_rfc3339(value)
            except ValueError:
                until_ns = time.time_ns() - _go_duration_ns(value)
        elif key in ("label", "label!"):
            k, s2, v = value.partition("=")
            labels.append((key == "label", k, v if s2 else None))
        else:
            raise InvalidArgument(f"invalid filter {key!r}")

    def keep(image_id: str, blob: dict) -> bool:
        from runtime.timeutil import created_ns

        if until_ns is not None and (created_ns(blob.get("created")) or 0) >= until_ns:
            return True
        config = blob.get("config")
        have = (config.get("Labels") if isinstance(config, dict) else None) or {}
        for positive, k, v in labels:
            hit = k in have and (v is None or have[k] == v)
            if hit != positive:
                return True
        return False

    return keep


def cmd_image_prune(paths: Paths, args: Namespace) -> int:
    from runtime.format.human import human_size
    from runtime.images.store import ImageStore
    from runtime.images.usage import prune

    keep = prune_keep(args.filter)
    if not args.force:
        what = "images without at least one container associated to them" if args.all \
            else "dangling images"
        print(f"WARNING! This will remove all {what}.")
        sys.stdout.write("Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store = Store(paths)
    used = {c.get("Image") for c in store.all()}
    lines, freed = prune(ImageStore(paths.root), args.all, lambda i: [i] if i in used else [], keep)
    if lines:
        print("Deleted Images:")
        for line in lines:
            print(line)
        print()
    print(f"Total reclaimed space: {human_size(freed)}")
    return 0
