"""COPY/ADD's selection flags: ``--exclude`` (dockerignore-style patterns, relative to
the copied source, as BuildKit's copier matches them), ``--parents`` (the source's
directories kept below an optional ``/./`` pivot), ``--link`` (a true/false flag)."""

from __future__ import annotations

import os
import re

from runtime.build.context import Context
from runtime.build.ignore import Matcher, parse_patterns

_WILDCARD = re.compile(r"[*?\[]")


def bool_flag(value: str | None) -> bool | None:
    """``--link`` / ``--link=true`` / ``--link=false``; None when not boolean."""
    if value is None:
        return False
    return {"true": True, "1": True, "false": False, "0": False}.get(value.lower())


def exclude_matcher(patterns: list[str]) -> Matcher | None:
    """The ``--exclude`` patterns as one matcher (ValueError on a bad pattern)."""
    return Matcher(parse_patterns("\n".join(patterns))) if patterns else None


class Skip:
    """What a copy of the context-relative source ``top`` leaves out: .dockerignore'd
    paths, and paths below ``top`` that ``--exclude`` matches."""

    def __init__(self, context: Context | None, exclude: Matcher | None, top: str) -> None:
        self.context, self.exclude, self.top = context, exclude, top.strip("/")
        self.descend = bool(context is not None and context.matcher.has_exclusions) or bool(
            exclude is not None and exclude.has_exclusions)

    def __call__(self, rel: str) -> bool:
        if self.context is not None and self.context.excluded(rel):
            return True
        if self.exclude is None:
            return False
        sub = rel[len(self.top):].lstrip("/") if self.top else rel
        return bool(sub) and self.exclude.excluded(sub)


def drop_excluded_matches(pattern: str, rels: list[str], exclude: Matcher | None) -> list[str]:
    """A wildcard source's matches less those ``--exclude`` names, each taken relative to
    the directory the wildcard starts in (``COPY --exclude=*.txt hom* /d/``)."""
    if exclude is None or not _WILDCARD.search(pattern):
        return rels
    parts = os.path.normpath("/" + pattern).lstrip("/").split("/")
    fixed = []
    for part in parts:
        if _WILDCARD.search(part):
            break
        fixed.append(part)
    base = "/".join(fixed)
    return [r for r in rels
            if not exclude.excluded(r[len(base):].lstrip("/") if base else r)]


def split_parents(src: str) -> tuple[str, str]:
    """``--parents`` source -> (pivot, path): ``a/./b/c`` keeps ``b/c`` below ``a``;
    without a ``/./`` the whole path is kept."""
    if "/./" in src:
        pivot, _, rest = src.partition("/./")
        return os.path.normpath("/" + pivot).lstrip("/"), rest
    return "", src
