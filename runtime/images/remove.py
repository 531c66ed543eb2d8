"""Removing images: ``box rmi``'s rules (by name it untags, the image going with its
last tag; by ID every tag goes; ``force`` and containers still using it) and dropping
an image's config blob with the layers no other image lists, which ``image prune``
(``usage``) shares. Works on ImageStore's internals under its lock, like ``usage``:
kept apart so the store module, on the ``box run`` path, holds only what a run needs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from runtime.errors import Conflict, DamagedState, NotFound
from runtime.images.config import diff_ids_of
from runtime.images.reference import parse_ref
from runtime.images.repositories import digests_of, tags_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from runtime.images.store import ImageStore


def remove(
    store: ImageStore, ref: str, force: bool, in_use: Callable[[str], list[str]]
) -> list[str]:
    """``box rmi``: the lines Docker prints ("Untagged: ...", "Deleted: sha256:...").

    By name: untags; the image goes with its last tag. By ID: all its tags go, which
    needs ``force`` when there are several. An image a container uses (``in_use``
    returns container IDs) is refused without ``force``; with it, only its tags go
    and the image stays (dangling) so the container's lower layers remain.
    """
    with store._locked(exclusive=True):
        repos = store._load_repos()
        found = store._lookup(ref, repos)
        if found is None:
            raise NotFound(f"Error: No such image: {ref}")
        image_id, by_id = found
        short = image_id[7:19]
        tags = tags_of(image_id, repos)
        users = in_use(image_id)
        if by_id:
            if len(tags) > 1 and not force:
                raise Conflict(f"conflict: unable to delete {short} (must be forced)"
                               " - image is referenced in multiple repositories")
            if users and not force:
                raise Conflict(f"conflict: unable to delete {short} (must be forced)"
                               f" - image is being used by container {users[0][:12]}")
            untag = tags
        else:
            name, tag = parse_ref(ref)
            if len(tags) == 1 and users and not force:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{ref}" (must force)'
                    f" - container {users[0][:12]} is using its referenced image {short}"
                )
            untag = [f"{name}:{tag}"]
        lines = [f"Untagged: {t}" for t in untag]
        for t in untag:
            repo = t.rsplit(":", 1)[0]
            repos.get(repo, {}).pop(t, None)
        if tags_of(image_id, repos) or users:
            store._save_repos(repos)
            return lines
        for t in digests_of(image_id, repos):  # digest refs go with the image
            lines.append(f"Untagged: {t}")
            repos.get(t.split("@", 1)[0], {}).pop(t, None)
        store._save_repos(repos)
        return lines + delete_image(store, image_id)


def delete_image(store: ImageStore, image_id: str) -> list[str]:
    """Drops the config blob, then every layer no other image lists (rmi, prune). Under
    the store's lock; the lines Docker prints ("Deleted: ...")."""
    import shutil

    diff_ids = diff_ids_of(store._config_blob(image_id))
    os.unlink(os.path.join(store.blobs, image_id[7:]))
    lines = [f"Deleted: {image_id}"]
    still_used: set[str] = set()
    for other in store._image_ids():
        try:
            still_used.update(diff_ids_of(store._config_blob(other)))
        except DamagedState:  # which layers it holds is unknown: keep them all
            still_used.update(diff_ids)
    for d in reversed(diff_ids):
        if d in still_used:
            continue
        hexid = d.removeprefix("sha256:")
        with contextlib.suppress(FileNotFoundError):  # the meta first: has_layer is False
            os.unlink(os.path.join(store.layers, f"{hexid}.json"))
        shutil.rmtree(os.path.join(store.layers, hexid), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(store.layers, f"{hexid}.tar-split.gz"))
        lines.append(f"Deleted: {d}")
    return lines
