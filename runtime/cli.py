"""The ``box`` command: docker's verbs, flags, output and exit codes.

Only the parser of the verb being run is built and only its module imported, so
``box run`` stays cheap (see bench/runtime_start.py).
"""

from __future__ import annotations

import importlib
import sys

from runtime.errors import BoxError
from runtime.flags import FlagError, FlagParser

# Docker: run/create/start report their own failures as 125 (or the command's 126/127).
_RUNTIME_VERBS = {"run", "create"}


class UsageError(BoxError):
    """A flag docker's CLI would reject before contacting anything: always 125."""


def _globals(argv: list[str]) -> tuple[str | None, str | None, int | None]:
    """Strip ``--root``/``--exec-root`` (pflag's forms) off the front of ``argv``; an
    exit code when one is malformed or unknown."""
    root = exec_root = None
    while argv and argv[0].startswith("--") and argv[0] not in ("--help", "--version"):
        flag, eq, value = argv.pop(0).partition("=")
        if flag not in ("--root", "--exec-root"):
            print(f"unknown flag: {flag}\nSee 'box --help'.", file=sys.stderr)
            return None, None, 125
        if not eq:
            if not argv:
                print(f"flag needs an argument: {flag}\nSee 'box --help'.", file=sys.stderr)
                return None, None, 125
            value = argv.pop(0)
        if flag == "--root":
            root = value
        else:
            exec_root = value
    return root, exec_root, None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root, exec_root, bad = _globals(argv)
    if bad is not None:
        return bad
    from runtime.commands import table

    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(table.main_help())
        return 0
    if argv[0] in ("-v", "--version"):
        from runtime.commands.sysinfo import short_version

        print(short_version())
        return 0
    if argv[0] == "help":  # `box help run` is `box run --help`, as docker's
        argv = argv[1:] + ["--help"] if len(argv) > 1 else ["--help"]
        if len(argv) == 1:
            sys.stdout.write(table.main_help())
            return 0
    if argv[0] in table.GROUPS and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        sys.stdout.write(table.group_help(argv[0]))
        return 0
    found = table.lookup(argv)
    if found is None and argv[0] in table.GROUPS and argv[1].startswith("-"):
        print(f"unknown flag: {argv[1].partition('=')[0]}\nSee 'box {argv[0]} --help'.",
              file=sys.stderr)
        return 125
    if found is None:
        what = " ".join(argv[:2]) if argv[0] in table.GROUPS else argv[0]
        print(f"box: '{what}' is not a box command.\nSee 'box --help'", file=sys.stderr)
        return 125
    key, taken = found
    path, argv = " ".join(argv[:taken]), argv[taken:]
    module_name, description, paths_of = table.COMMANDS[key]
    func, preset = table.HANDLERS.get(key, (key, {}))
    try:
        module = importlib.import_module(f"runtime.commands.{module_name}")
    except ModuleNotFoundError as e:  # a verb listed before its module is merged
        if e.name != f"runtime.commands.{module_name}":
            raise
        print(f"box: '{path}' is not a box command.\nSee 'box --help'", file=sys.stderr)
        return 125
    parser = FlagParser(prog=f"box {path}", add_help=func not in table.NO_SHORT_HELP,
                        description=description,
                        aliases=tuple(f"box {p}" for p in paths_of) if len(paths_of) > 1 else ())
    getattr(module, f"add_{func}")(parser)
    parser.set_defaults(**preset)
    from runtime.paths import ROOT_MODE, Paths, private_dir

    try:
        try:
            args = parser.parse_args(argv)
        except FlagError as e:
            raise UsageError(f"{e}\nSee '{parser.prog} --help'.") from None
        paths = Paths.from_env(root, exec_root)
        if func not in table.STATELESS:
            private_dir(paths.root, ROOT_MODE)
        return int(getattr(module, f"cmd_{func}")(paths, args) or 0)
    except BoxError as e:
        print(e if isinstance(e, UsageError) else f"box: {e}", file=sys.stderr)
        if (isinstance(e, UsageError) or func in _RUNTIME_VERBS or e.exit_code in (126, 127)
                or getattr(e, "command_exit", False)):  # a failed RUN: its code (docker)
            return e.exit_code
        return 1  # docker's CLI: a daemon-side failure of any other verb exits 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def unexpected(exc: BaseException, prog: str = "box") -> str:
    """The one line a failure nobody foresaw becomes: its cause, never a traceback
    (the traceback too, on stderr, with ``BOX_DEBUG=1``). A net under the typed errors,
    not a replacement for them: each bug it catches still wants its own fix."""
    import os

    if os.environ.get("BOX_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    cause = " ".join(f"{type(exc).__name__}: {exc}".split())
    return f"{prog}: internal error: {cause} (BOX_DEBUG=1 shows where)"


def entry() -> None:
    """The console script: ``main`` then a hard exit. Skipping the interpreter's
    teardown saves ~4 ms per ``box`` call; nothing is lost since stdio is flushed here."""
    import os

    try:
        code = main()
    except Exception as exc:  # the last line of defence, see unexpected()
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        print(unexpected(exc), file=sys.stderr)
        code = 125
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
