"""``box history``: one image's build steps, newest first, each with the size of the
layer it made. Apart from the verbs that name images (``images``): it reads one image's
config blob and layer metadata, not the tag index."""

from __future__ import annotations

import sys

from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

TYPE_CHECKING = False
if TYPE_CHECKING:  # the store module is imported lazily, in the verb
    from runtime.images.store import ImageStore

HISTORY_TABLE = ("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


class _HistoryRow:
    def __init__(self, ident: str, entry: dict, size: int, trunc: bool, human: bool) -> None:
        from runtime.format.human import human_size, time_ago
        from runtime.timeutil import created_ns

        created = _text(entry.get("created"))
        created_at = created_ns(created)
        by = _text(entry.get("created_by")).replace("\t", " ")
        if trunc and len(by) > 45:
            by = by[:44] + "…"
        self.ID = ident
        self.CreatedAt = created
        self.CreatedSince = "N/A" if created_at is None else \
            time_ago(created_at) if human else created
        self.CreatedBy = by
        self.Size = human_size(size) if human else str(size)
        self.Comment = _text(entry.get("comment"))


def _text(value: object) -> str:
    """An optional string of a history entry: missing, null or another type reads as ""."""
    return value if isinstance(value, str) else ""


def add_history(p: FlagParser) -> None:
    p.add_argument("-H", "--human", action="store_true", default=True)
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("image", metavar="IMAGE")


def cmd_history(paths: Paths, args: Namespace) -> int:
    """One row per history entry, newest first; a layer's size on the entry that made it."""
    import json

    from runtime.format import render_format
    from runtime.images.store import ImageStore

    store = ImageStore(paths.root)
    img = store.resolve(args.image)
    blob = json.loads(store.config_bytes(img.id))
    history = blob.get("history")
    history = [e if isinstance(e, dict) else {} for e in history] \
        if isinstance(history, list) else []
    layers = list(img.diff_ids)
    if not history:  # images without history: one anonymous entry per layer (or one)
        history = [{"created": img.created} for _ in layers or [None]]
    rows = []
    for i, entry in enumerate(history):
        size = 0
        if not entry.get("empty_layer") and layers:
            size = _layer_size(store, layers.pop(0))
        ident = "<missing>"
        if i == len(history) - 1:
            ident = img.id if args.no_trunc else img.short_id
        rows.append(_HistoryRow(ident, entry, size, not args.no_trunc, args.human))
    rows.reverse()
    if args.quiet:
        for r in rows:
            print(r.ID)
        return 0
    sys.stdout.write(render_format(args.format, HISTORY_TABLE, rows, HISTORY_HEADERS))
    return 0


def _layer_size(store: ImageStore, diff_id: str) -> int:
    """A layer's size for ``history``; 0 when its metadata is gone or damaged."""
    from runtime.errors import DamagedState

    try:
        return int(store.layer_meta(diff_id).get("size", 0))
    except (FileNotFoundError, DamagedState, ValueError, TypeError):
        return 0
