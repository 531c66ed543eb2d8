"""Image references as Docker parses them (distribution/reference): ``name[:tag]``,
``name@sha256:...``, Docker Hub's familiar names. Light: on the ``box run`` path."""

from __future__ import annotations

import re

from formats.lazyre import lazy_compile
from runtime.errors import InvalidArgument

DEFAULT_TAG = "latest"
# Docker's reference grammar (distribution/reference), enough to refuse what Docker refuses.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = (r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
           r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)")
_NAME_RE = lazy_compile(rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = lazy_compile(r"^[\w][\w.-]{0,127}$")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _valid_name(name: str) -> bool:
    """The grammar's verdict; a name of one component of lowercase letters and digits
    (``busybox``, ``alpine``) is valid without asking the pattern, which costs ~1 ms to
    compile on every ``box run``."""
    return bool(name) and set(name) <= _PLAIN or bool(_NAME_RE.match(name))


def parse_ref(text: str) -> tuple[str, str]:
    """``busybox`` -> ``("busybox", "latest")``; refuses what Docker calls an invalid reference."""
    ref = text.strip()
    if "@" in ref:
        raise InvalidArgument(f"invalid reference format: digests are not supported here: {text!r}")
    name, tag = ref, DEFAULT_TAG
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:  # a colon after the last slash starts the tag (not a registry port)
        name, tag = ref[:colon], ref[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: invalid tag in {text!r}")
    if not name or len(name) > 255 or not _valid_name(name):
        if name.lower() != name and _NAME_RE.match(name.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name must be lowercase: {text!r}"
            )
        raise InvalidArgument(f"invalid reference format: {text!r}")
    if re.fullmatch(r"[a-f0-9]{64}", name):
        raise InvalidArgument(
            f"invalid repository name {text!r}: cannot specify 64-byte hexadecimal strings"
        )
    # Docker's familiar form: docker.io/library/busybox and library/busybox are "busybox"
    if name.startswith(("docker.io/", "index.docker.io/")):
        name = name.split("/", 1)[1]
    if name.startswith("library/") and name.count("/") == 1:
        name = name.removeprefix("library/")
    return name, tag


def ref_name(ref: str) -> str:
    return parse_ref(ref.split("@", 1)[0])[0]


def ref_key(ref: str) -> str:
    """The repositories.json key: ``name:tag`` or ``name@sha256:...``."""
    if "@" in ref:
        head, _, digest = ref.partition("@")
        if not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            raise InvalidArgument(f"invalid reference format: bad digest in {ref!r}")
        return f"{parse_ref(head)[0]}@{digest}"
    return ":".join(parse_ref(ref))


def display(text: str) -> str:
    """What Docker echoes in "Unable to find image ...": the ref with its tag made explicit."""
    try:
        name, tag = parse_ref(text)
    except InvalidArgument:
        return text
    return f"{name}:{tag}"
