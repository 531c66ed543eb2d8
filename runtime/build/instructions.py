"""The Dockerfile parsed by BuildKit's own parser (the ``dockerfile`` package wraps its
Go code), then checked here: known instructions, their flags, argument counts, JSON
forms. Every error names the file, the line and the instruction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import InvalidArgument

# instruction -> the flags it takes (anything else is an error naming the line)
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "RUN": frozenset({"mount", "network", "security"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval",
                              "retries"}),
    **{name: frozenset() for name in (
        "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "VOLUME",
        "SHELL", "STOPSIGNAL", "ONBUILD", "MAINTAINER")},
}
_ESCAPE_RE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


class BuildSyntaxError(InvalidArgument):
    """Bad Dockerfile input: the message names file, line and instruction."""


@dataclass
class Instruction:
    """One checked instruction. ``args`` as the parser split them (unsubstituted),
    ``flags`` name -> values (a flag may repeat: ``--mount``)."""

    cmd: str
    args: list[str]
    flags: dict[str, list[str]]
    json: bool
    original: str
    line: int
    heredocs: list[tuple[str, str]] = field(default_factory=list)  # (name, content)
    sub: Instruction | None = None  # ONBUILD's trigger

    def flag(self, name: str, default: str | None = None) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else default

    @property
    def text(self) -> str:
        """The instruction as written, on one line (the "Step N/M :" text)."""
        return " ".join(self.original.split("\n", 1)[0].split())


@dataclass
class Stage:
    index: int
    base: str  # unsubstituted FROM argument
    name: str  # AS name, lower-cased ("" when unnamed)
    platform: str
    line: int
    original: str
    steps: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    path: str  # as the user named it, for messages
    escape: str
    global_args: list[Instruction]
    stages: list[Stage]


def _error(path: str, line: int, text: str, reason: str) -> BuildSyntaxError:
    return BuildSyntaxError(f"{path}:{line}: {text}: {reason}" if text else
                            f"{path}:{line}: {reason}")


def _escape_char(source: str) -> str:
    """``# escape=`` among the leading parser directives (default backslash)."""
    for line in source.splitlines():
        found = _ESCAPE_RE.match(line)
        if found:
            return found.group(1)
        if not _DIRECTIVE_RE.match(line):
            break
    return "\\"


def _go_parse(source: str, path: str) -> tuple[Any, ...]:
    """The parser's commands; a parse failure is located by parsing growing prefixes."""
    import dockerfile

    try:
        return dockerfile.parse_string(source)
    except dockerfile.GoParseError as e:
        lines = source.splitlines(keepends=True)
        lo, hi = 1, len(lines)
        while lo < hi:  # smallest prefix that fails to parse
            mid = (lo + hi) // 2
            try:
                dockerfile.parse_string("".join(lines[:mid]))
                lo = mid + 1
            except dockerfile.GoParseError:
                hi = mid
        text = lines[lo - 1].strip() if lines else ""
        raise _error(path, lo, text, str(e)) from None


def _flags(cmd: str, raw: tuple[str, ...], path: str, line: int, text: str
           ) -> dict[str, list[str]]:
    allowed = FLAGS[cmd]
    flags: dict[str, list[str]] = {}
    for item in raw:
        name, eq, value = item.removeprefix("--").partition("=")
        if name not in allowed:
            raise _error(path, line, text, f"unknown flag: --{name}")
        flags.setdefault(name, []).append(value if eq else "true")
    return flags


def _check(ins: Instruction, path: str) -> None:
    """Argument counts and forms BuildKit's instruction parser enforces."""
    def fail(reason: str) -> BuildSyntaxError:
        return _error(path, ins.line, ins.text, reason)

    cmd, n = ins.cmd, len(ins.args)
    needs = {"FROM": 1, "RUN": 1, "ENV": 2, "ARG": 1, "WORKDIR": 1, "USER": 1, "EXPOSE": 1,
             "LABEL": 2, "VOLUME": 1, "SHELL": 1, "STOPSIGNAL": 1, "ONBUILD": 1,
             "MAINTAINER": 1, "COPY": 2, "ADD": 2, "HEALTHCHECK": 1}
    if n < needs.get(cmd, 0) or (n == 1 and not ins.args[0].strip() and cmd != "CMD"):
        count = "at least two arguments" if needs.get(cmd) == 2 else "at least one argument"
        raise fail(f"{cmd} requires {count}")
    if cmd == "FROM" and n not in (1, 3):
        raise fail("FROM requires either one or three arguments")
    if cmd == "FROM" and n == 3 and ins.args[1].lower() != "as":
        raise fail("FROM requires either one or three arguments")
    if cmd == "SHELL" and not ins.json:
        raise fail("SHELL requires the arguments to be in JSON form")
    if cmd in ("ARG", "USER", "WORKDIR", "STOPSIGNAL") and n != 1:
        raise fail(f"{cmd} requires exactly one argument")
    if cmd in ("ENV", "LABEL") and n % 2:
        raise fail(f"{cmd} names must have values")
    if cmd == "ONBUILD" and (ins.sub is None or ins.sub.cmd in ("ONBUILD", "FROM",
                                                                "MAINTAINER")):
        raise fail("ONBUILD does not allow FROM, MAINTAINER or ONBUILD as a trigger")


def _instruction(c: Any, path: str) -> Instruction:
    cmd = (c.cmd or "").upper()
    line, original = c.start_line, c.original or ""
    text = " ".join(original.split("\n", 1)[0].split())
    if cmd not in FLAGS:
        raise _error(path, line, text, f"unknown instruction: {c.cmd or original}")
    sub = None
    if cmd == "ONBUILD" and c.sub_cmd:
        import dockerfile

        inner = original.split(None, 1)[1] if " " in original.strip() else ""
        parsed = dockerfile.parse_string(inner + "\n")
        sub = _instruction(parsed[0], path) if parsed else None
        if sub is not None:
            sub.line = line
    ins = Instruction(cmd=cmd, args=list(c.value),
                      flags=_flags(cmd, c.flags, path, line, text), json=bool(c.json),
                      original=original, line=line,
                      heredocs=[(h.name, h.content) for h in c.heredocs], sub=sub)
    _check(ins, path)
    return ins


def parse(source: str, path: str = "Dockerfile") -> Dockerfile:
    """The Dockerfile's global ARGs and its stages; BuildSyntaxError on bad input."""
    escape = _escape_char(source)
    commands = _go_parse(source, path)
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for c in commands:
        ins = _instruction(c, path)
        if ins.cmd == "FROM":
            name = ins.args[2].lower() if len(ins.args) == 3 else ""
            if name and not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
                raise _error(path, ins.line, ins.text, f"invalid name for build stage: "
                                                        f"{ins.args[2]!r}")
            if name and any(s.name == name for s in stages):
                raise _error(path, ins.line, ins.text, f"duplicate stage name {name!r}")
            stages.append(Stage(len(stages), ins.args[0], name, ins.flag("platform") or "",
                                ins.line, ins.text))
        elif not stages:
            if ins.cmd != "ARG":
                raise _error(path, ins.line, ins.text,
                             "no build stage in current context (FROM must come first)")
            global_args.append(ins)
        else:
            stages[-1].steps.append(ins)
    if not stages:
        raise BuildSyntaxError(f"{path}: file with no instructions" if not commands else
                               f"{path}: no build stage (FROM) in the file")
    return Dockerfile(path, escape, global_args, stages)
