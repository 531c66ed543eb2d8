"""Which container labels travel with metrics and logs: ``--label-whitelist``, one meaning
for the collector and the shipper alike.

A pattern is an exact label name (``app``) or a shell glob (``io.kubernetes.*``,
``team-?``, ``[ab]*``), matched case-sensitively against the whole name, as Filebeat's and
Fluent Bit's label allow-lists do. The flag is repeatable and takes comma-separated
patterns; no pattern admits no label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_GLOB_CHARS = "*?["


def split_patterns(items: Iterable[str]) -> tuple[str, ...]:
    """``["app,team", " io.kubernetes.* "]`` -> ``("app", "team", "io.kubernetes.*")``:
    the flag's values as patterns, blanks dropped, first occurrence kept."""
    patterns: list[str] = []
    for item in items:
        patterns.extend(p.strip() for p in item.split(",") if p.strip())
    return tuple(dict.fromkeys(patterns))


class LabelWhitelist:
    """Label names to keep: exact names or shell globs (``app``, ``io.kubernetes.*``)."""

    __slots__ = ("exact", "globs", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self.exact = frozenset(p for p in self.patterns if not any(c in p for c in _GLOB_CHARS))
        self.globs = tuple(p for p in self.patterns if p not in self.exact)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"LabelWhitelist({list(self.patterns)!r})"

    def admits(self, name: str) -> bool:
        if name in self.exact:
            return True
        if not self.globs:
            return False
        from fnmatch import fnmatchcase  # only when a glob was given

        return any(fnmatchcase(name, g) for g in self.globs)

    def filter(self, labels: Mapping[str, object]) -> dict[str, str]:
        """The admitted labels, values as strings."""
        if not self.patterns or not labels:
            return {}
        return {str(k): str(v) for k, v in labels.items() if self.admits(str(k))}
