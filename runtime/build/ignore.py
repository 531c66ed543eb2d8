"""``.dockerignore`` with Docker's matching (moby's patternmatcher): patterns are
anchored at the context root, ``*`` and ``?`` stay inside one path component, ``**``
spans any number of them, a pattern that matches a directory excludes everything below
it, and the last matching pattern wins, so a ``!`` pattern re-includes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _clean(path: str) -> str:
    """Go's filepath.Clean, then relative to the root (a leading / means the root)."""
    cleaned = os.path.normpath(path) if path else "."
    cleaned = cleaned.lstrip("/") or "."
    return cleaned.removeprefix("./") if cleaned != "." else "."


def _regex(pattern: str) -> re.Pattern[str]:
    """moby's translation: ``**`` any run of components, ``*`` within one, classes kept."""
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # "**/" : zero or more directories
                    i += 1
                    out.append("(?:.*/)?")
                elif i >= n:
                    out.append(".*")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"syntax error in pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


def parse_patterns(text: str) -> list[Pattern]:
    """The lines of a .dockerignore: ``#`` comments and blank lines skipped, each
    pattern trimmed and cleaned as Docker's reader does."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                raise ValueError('illegal exclusion pattern: "!"')
        cleaned = _clean(line)
        patterns.append(Pattern(cleaned, exclusion, _regex(cleaned)))
    return patterns


class Matcher:
    """Decides whether a context path (relative, "/"-separated) is excluded."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        self.has_exclusions = any(p.exclusion for p in patterns)

    @classmethod
    def from_text(cls, text: str) -> Matcher:
        return cls(parse_patterns(text))

    def excluded(self, path: str) -> bool:
        """Last match wins; a pattern matching any parent directory matches the path."""
        path = _clean(path)
        parents = path.split("/")
        prefixes = ["/".join(parents[:i]) for i in range(1, len(parents))]
        matched = False
        for p in self.patterns:
            hit = bool(p.regex.match(path)) or any(p.regex.match(d) for d in prefixes)
            if hit:
                matched = not p.exclusion
        return matched
