"""Docker's (pflag's) command-line rules with argparse's ``add_argument`` vocabulary.

Why not argparse: building the ``box run`` parser with argparse costs ~8 ms (import and
43 ``add_argument`` calls), a seventh of the start-time budget; and docker users expect
pflag's behaviour: ``-it`` bundles, ``-eK=V``, ``--flag=value``, flags only before the
first positional (``box run IMAGE CMD -x`` passes ``-x`` to CMD), and pflag's messages.
"""

from __future__ import annotations

import sys

REMAINDER = "..."  # nargs: this positional takes every argument left, flags included


class FlagError(Exception):
    """A usage error, worded like pflag's."""


class Namespace:
    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Namespace({self.__dict__!r})"


class _Flag:
    __slots__ = ("names", "dest", "action", "default", "type", "choices", "help", "metavar")

    def __init__(self, names: tuple[str, ...], dest: str, action: str, default: object,
                 type_: object, choices: object, help_: str, metavar: str | None = None) -> None:
        self.names, self.dest, self.action, self.default = names, dest, action, default
        self.type, self.choices, self.help, self.metavar = type_, choices, help_, metavar

    @property
    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class _Positional:
    __slots__ = ("dest", "nargs", "type", "choices", "metavar")

    def __init__(self, dest: str, nargs: object, type_: object, choices: object,
                 metavar: str | None = None) -> None:
        self.dest, self.nargs, self.type, self.choices = dest, nargs, type_, choices
        self.metavar = metavar

    def usage(self) -> str:
        """docker's usage words: ``CONTAINER [CONTAINER...]``, ``[COMMAND] [ARG...]``."""
        word = self.metavar or self.dest.upper()
        if self.nargs == "+":
            return f"{word} [{word}...]"
        if self.nargs == "*":
            return f"[{word}...]"
        if self.nargs == REMAINDER:
            return f"[{word}] [ARG...]"
        return f"[{word}]" if self.nargs == "?" else word


def _sort_key(f: _Flag) -> str:
    return next((n for n in f.names if n.startswith("--")), f.names[0]).lstrip("-")


def _option_row(f: _Flag) -> tuple[str, str]:
    """pflag's row: ``  -m, --memory string``, ``      --rm``, and the help text with
    ``(default X)`` when the default is not the type's zero value."""
    short = next((n for n in f.names if len(n) == 2), "")
    long = next((n for n in f.names if n.startswith("--")), "")
    left = f"  {short}, {long}" if short and long else f"  {short}" if short else f"      {long}"
    if f.takes_value:
        left += " " + (f.metavar or ("filter" if long == "--filter" else  # opts.FilterOpt
                                     "list" if f.action == "append" else
                                     "int" if f.type is int else "string"))
    text = f.help
    if not text:
        from runtime.flaghelp import HELP

        text = HELP.get(long or short, "")
    default = f.default
    if f.action == "store_true":
        shown = "true" if default else ""
    elif f.action == "append" or default in (None, ""):
        shown = ""
    else:
        shown = str(default) if f.type is int else f'"{default}"'
    return left, f"{text} (default {shown})" if shown else text


class FlagParser:
    """The argparse subset our commands use: store, store_true, append, help; positionals
    with nargs None, "?", "*", "+" or REMAINDER; type, choices, dest, default, set_defaults."""

    def __init__(self, prog: str, add_help: bool = True, description: str = "",
                 aliases: tuple[str, ...] = ()) -> None:
        self.prog, self.description, self.aliases = prog, description, aliases
        self.flags: dict[str, _Flag] = {}
        self.ordered: list[_Flag] = []
        self.positionals: list[_Positional] = []
        self.defaults: dict[str, object] = {}
        if add_help:
            self.add_argument("-h", "--help", action="help", help="Print usage")

    def add_argument(self, *names: str, action: str = "store", default: object = None,
                     type: object = None, dest: str | None = None, nargs: object = None,
                     choices: object = None, help: str = "", metavar: str | None = None) -> None:
        if not names[0].startswith("-"):
            self.positionals.append(_Positional(names[0], nargs, type, choices, metavar))
            return
        long = next((n for n in names if n.startswith("--")), names[0])
        dest = dest or long.lstrip("-").replace("-", "_")
        if action == "store_true" and default is None:
            default = False
        flag = _Flag(names, dest, action, default, type, choices, help, metavar)
        self.ordered.append(flag)
        for n in names:
            self.flags[n] = flag

    def set_defaults(self, **values: object) -> None:
        self.defaults.update(values)

    def usage(self) -> str:
        """docker's ``box COMMAND --help``: usage line, description, aliases, then the
        options sorted by long name with their type and default, pflag's columns."""
        words = [p.usage() for p in self.positionals]
        if any(f.action != "help" for f in self.ordered):  # docker: `box pause CONTAINER...`
            words.insert(0, "[OPTIONS]")
        lines = ["", f"Usage:  {' '.join([self.prog, *words])}", ""]
        if self.description:
            lines += [self.description, ""]
        if self.aliases:
            lines += ["Aliases:", "  " + ", ".join(self.aliases), ""]
        rows = [_option_row(f) for f in sorted(self.ordered, key=_sort_key)]
        width = max((len(left) for left, _ in rows), default=0) + 3
        lines += ["Options:", *(f"{left.ljust(width)}{text}".rstrip() for left, text in rows)]
        return "\n".join(lines) + "\n"

    # -- parsing -------------------------------------------------------------
    def parse_args(self, argv: list[str]) -> Namespace:
        values: dict[str, object] = {}
        for f in self.ordered:
            if f.action == "append":
                values[f.dest] = list(f.default) if f.default else []
            elif f.action != "help":
                values[f.dest] = f.default
        values.update(self.defaults)
        args: list[str] = []
        i = 0
        only_positionals = False
        while i < len(argv):
            arg = argv[i]
            i += 1
            if only_positionals or arg == "-" or not arg.startswith("-"):
                args.append(arg)
                if self._rest_begins(len(args)):
                    args.extend(argv[i:])
                    break
                continue
            if arg == "--":
                only_positionals = True
                continue
            if arg.startswith("--"):
                name, eq, value = arg.partition("=")
                flag = self.flags.get(name)
                if flag is None:
                    raise FlagError(f"unknown flag: {name}")
                if flag.takes_value and not eq:
                    if i >= len(argv):
                        raise FlagError(f"flag needs an argument: {name}")
                    value, i = argv[i], i + 1
                self._apply(flag, name, value if (eq or flag.takes_value) else None, values)
                continue
            # shorthand: -it, -eK=V, -e K=V, -m=32m
            j = 1
            while j < len(arg):
                name = "-" + arg[j]
                flag = self.flags.get(name)
                if flag is None:
                    raise FlagError(f"unknown shorthand flag: '{arg[j]}' in {arg}")
                j += 1
                if flag.takes_value:
                    value = arg[j:]
                    if value.startswith("="):
                        value = value[1:]
                    if not value:
                        if i >= len(argv):
                            raise FlagError(f"flag needs an argument: '{arg[j - 1]}' in {arg}")
                        value, i = argv[i], i + 1
                    self._apply(flag, name, value, values)
                    break
                self._apply(flag, name, None, values)
        self._bind_positionals(args, values)
        return Namespace(**values)

    def _rest_begins(self, count: int) -> bool:
        """True once every positional before the one that takes the remainder has its
        argument: pflag's non-interspersed rule (``box run --entrypoint sh IMAGE -c CMD``
        passes ``-c`` to the command, as docker does)."""
        seen = 0
        for p in self.positionals:
            if p.nargs == REMAINDER:
                return count >= seen
            seen += 1 if p.nargs in (None, "?") else 1
        return False

    def _apply(self, flag: _Flag, name: str, value: str | None, values: dict[str, object]) -> None:
        if flag.action == "help":
            sys.stdout.write(self.usage())
            raise SystemExit(0)
        if flag.action == "store_true":
            if value is None or value.lower() in ("true", "1", "t"):
                values[flag.dest] = True
            elif value.lower() in ("false", "0", "f"):
                values[flag.dest] = False
            else:
                raise FlagError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                                f'parsing "{value}": invalid syntax')
            return
        converted = self._convert(flag.type, flag.choices, value or "", name)
        if flag.action == "append":
            values[flag.dest].append(converted)
        else:
            values[flag.dest] = converted

    @staticmethod
    def _convert(type_: object, choices: object, value: str, name: str) -> object:
        if type_ is int:
            try:
                out: object = int(value)
            except ValueError:
                raise FlagError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseInt: '
                                f'parsing "{value}": invalid syntax') from None
        else:
            out = value
        if choices is not None and out not in choices:
            raise FlagError(f'invalid argument "{value}" for "{name}" flag: must be one of '
                            f'{", ".join(map(str, choices))}')
        return out

    def _arity_error(self, need: int) -> FlagError:
        """cobra's ExactArgs / MinimumNArgs words."""
        exact = all(p.nargs is None for p in self.positionals)
        return FlagError(f'"{self.prog}" requires {"exactly" if exact else "at least"} {need} '
                         f'argument{"s" if need != 1 else ""}.')

    def _bind_positionals(self, args: list[str], values: dict[str, object]) -> None:
        need = sum(1 for p in self.positionals if p.nargs in (None, "+"))
        rest = list(args)
        for idx, p in enumerate(self.positionals):
            later_need = sum(1 for q in self.positionals[idx + 1:] if q.nargs in (None, "+"))
            if p.nargs is None:
                if not rest:
                    raise self._arity_error(need)
                values[p.dest] = self._convert(p.type, p.choices, rest.pop(0), p.dest)
            elif p.nargs == "?":
                values[p.dest] = rest.pop(0) if len(rest) > later_need else None
            elif p.nargs in ("*", "+", REMAINDER):
                take = max(0, len(rest) - later_need)
                if p.nargs == "+" and take == 0:
                    raise self._arity_error(need)
                values[p.dest], rest = rest[:take], rest[take:]
        if rest and self.positionals and all(p.nargs is None for p in self.positionals):
            raise self._arity_error(need)
        if rest:
            raise FlagError(f'"{self.prog}" accepts no argument(s) like {rest[0]!r}.')
