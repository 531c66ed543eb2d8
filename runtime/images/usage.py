"""What the store uses on disk and what can go: ``box image prune`` and ``box system df``.

Sizes count each layer once however many images share it (the store keeps it once).
Works on ImageStore's internals under its lock; kept apart so the store module (on the
``box run`` path) stays small.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable

from runtime.errors import DamagedState
from runtime.images.config import diff_ids_of as _diff_ids
from runtime.images.remove import delete_image
from runtime.images.repositories import digests_of, tags_of
from runtime.images.store import ImageStore

Usage = namedtuple("Usage", "total active size reclaimable")


def prune(store: ImageStore, everything: bool, in_use: Callable[[str], list[str]],
          keep: Callable[[str, dict], bool] | None = None) -> tuple[list[str], int]:
    """Removes dangling images (every unused one with ``everything``) that no container
    uses and ``keep`` does not protect. Returns docker's lines and the bytes freed."""
    lines: list[str] = []
    freed = 0
    with store._locked(exclusive=True):
        repos = store._load_repos()
        for image_id in store._image_ids():
            tags = tags_of(image_id, repos)
            if in_use(image_id) or (tags and not everything):
                continue
            blob = store._config_blob(image_id)
            if keep is not None and keep(image_id, blob):
                continue
            untagged = tags + digests_of(image_id, repos)
            for ref in untagged:
                lines.append(f"untagged: {ref}")
                name = ref.split("@", 1)[0] if "@" in ref else ref.rsplit(":", 1)[0]
                repos.get(name, {}).pop(ref, None)
            store._save_repos(repos)
            sizes = {d: _layer_size(store, d) for d in _diff_ids(blob)}
            for line in delete_image(store, image_id):
                ident = line.removeprefix("Deleted: ")
                lines.append(f"deleted: {ident}")
                freed += sizes.get(ident, 0)
            _journal(store, image_id, blob, ["untag"] * len(untagged) + ["delete"])
    return lines, freed


def _journal(store: ImageStore, image_id: str, blob: dict, actions: list[str]) -> None:
    """moby's image events of a prune: untag and delete, named by the image's id."""
    import os

    from runtime.journal import event

    labels = (blob.get("config") or {}).get("Labels") or {}
    root = os.path.dirname(store.dir)
    for action in actions:
        event(root, "image", action, image_id, **{str(k): v for k, v in labels.items()},
              name=image_id)


def _layer_size(store: ImageStore, diff_id: str) -> int:
    try:
        return int(store.layer_meta(diff_id).get("size", 0))
    except (FileNotFoundError, DamagedState, ValueError, TypeError):
        return 0


def images_usage(store: ImageStore, used_images: Iterable[str],
                 report: Callable[[str], None] | None = None) -> Usage:
    """Images: total, used by a container, bytes of their layers (shared ones once),
    bytes that would go if every unused image were removed. A damaged config blob
    counts its image without layers and is passed to ``report``."""
    used = set(used_images)
    with store._locked(exclusive=False):
        layers: dict[str, set[str]] = {}
        ids = store._image_ids()
        for image_id in ids:
            try:
                blob = store._config_blob(image_id)
            except (FileNotFoundError, DamagedState) as e:
                if report is not None and isinstance(e, DamagedState):
                    report(str(e))
                continue
            for d in _diff_ids(blob):
                layers.setdefault(d, set()).add(image_id)
        sizes = {d: _layer_size(store, d) for d in layers}
    total = sum(sizes.values())
    held = sum(sizes[d] for d, users in layers.items() if users & used)
    return Usage(len(ids), len(used & set(ids)), total, total - held)
