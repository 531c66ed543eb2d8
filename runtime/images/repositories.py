"""``repositories.json``, the image store's tag index: ``name:tag`` and ``name@digest``
-> image ID; read strictly (a malformed index is DamagedState), written sorted, and
looked up in Docker's order (a name, a pulled digest, then a full or unique ID prefix).
Apart from the store's blobs and layers: what the names point at is one idea, what is
stored another. The caller holds the store's lock."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from formats.atomicfile import write_atomic
from formats.lazyre import lazy_compile
from runtime.errors import DamagedState, InvalidArgument
from runtime.images.reference import parse_ref
from runtime.state import json_object

HEX_RE = lazy_compile(r"^[a-f0-9]{1,64}$")


def load(path: str) -> dict[str, dict[str, str]]:
    """The index as {repository: {ref: image ID}}; {} before the first image."""
    try:
        with open(path, "rb") as f:
            data = json_object(f.read(), path)
    except FileNotFoundError:
        return {}
    repos = data.get("Repositories")
    if not isinstance(repos, dict) or not all(
            isinstance(tags, dict) and all(isinstance(i, str) for i in tags.values())
            for tags in repos.values()):
        raise DamagedState(f"damaged state file {path}: 'Repositories' missing "
                           "or not a map of tags to image IDs")
    return repos


def save(path: str, repos: dict[str, dict[str, str]]) -> None:
    repos = {name: tags for name, tags in sorted(repos.items()) if tags}
    write_atomic(path, json.dumps({"Repositories": repos}).encode(), 0o666)


def lookup(text: str, repos: dict[str, dict[str, str]],
           image_ids: Callable[[], list[str]]) -> tuple[str, bool] | None:
    """(image id, found by ID) for a name[:tag], a full ID or a unique ID prefix;
    ``image_ids`` lists the stored images (asked only for an ID prefix)."""
    try:
        name, tag = parse_ref(text)
    except InvalidArgument:
        name = ""
    if name:
        image_id = repos.get(name, {}).get(f"{name}:{tag}")
        if image_id:
            return image_id, False
    elif "@" in text:  # name@sha256:<manifest digest>, as pulled
        head, _, digest = text.partition("@")
        with contextlib.suppress(InvalidArgument):
            name = parse_ref(head)[0]
            image_id = repos.get(name, {}).get(f"{name}@{digest}")
            if image_id:
                return image_id, False
    hexpart = text.removeprefix("sha256:")
    if not HEX_RE.match(hexpart):
        return None
    matches = [i for i in image_ids() if i[7:].startswith(hexpart)]
    if len(matches) > 1:
        raise InvalidArgument(f"image ID prefix {text!r} is ambiguous")
    return (matches[0], True) if matches else None


def tags_of(image_id: str, repos: dict[str, dict[str, str]]) -> list[str]:
    return sorted(t for tags in repos.values() for t, i in tags.items()
                  if i == image_id and "@" not in t)


def digests_of(image_id: str, repos: dict[str, dict[str, str]]) -> list[str]:
    return sorted(t for tags in repos.values() for t, i in tags.items()
                  if i == image_id and "@" in t)
