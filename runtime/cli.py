"""The ``box`` command: docker's verbs, flags, output and exit codes.

Only the parser of the verb being run is built and only its module imported, so
``box run`` stays cheap (see bench/runtime_start.py).
"""

from __future__ import annotations

import importlib
import sys

from runtime.errors import BoxError
from runtime.flags import FlagError, FlagParser

# verb -> module under runtime/commands that defines add_<verb>(parser) and cmd_<verb>(paths, args)
COMMANDS = {
    "run": "run", "create": "run", "start": "run",
    "stop": "lifecycle", "kill": "lifecycle", "restart": "lifecycle", "rm": "lifecycle",
    "wait": "lifecycle",
    "ps": "info", "inspect": "info", "logs": "info", "top": "info",
    "exec": "exec", "cp": "cp", "stats": "stats",
    "port": "network", "network": "network", "volume": "volume",
    **{f"network_{sub}": "network" for sub in
       ("create", "ls", "inspect", "rm", "connect", "disconnect", "prune")},
    **{f"volume_{sub}": "volume" for sub in ("create", "ls", "inspect", "rm", "prune")},
    "import": "images", "images": "images", "rmi": "images", "tag": "images",
    "history": "images", "image_prune": "images", "system_df": "system",
    "load": "transfer", "save": "transfer", "export": "transfer", "pull": "transfer",
    "push": "transfer", "login": "transfer", "logout": "transfer",
    "build": "build",
    "events": "events", "update": "update", "pause": "pause", "unpause": "pause",
}
# Docker: run/create/start report their own failures as 125 (or the command's 126/127).
_RUNTIME_VERBS = {"run", "create"}


class UsageError(BoxError):
    """A flag docker's CLI would reject before contacting anything: always 125."""




def _usage() -> str:
    verbs = ", ".join(sorted(COMMANDS))
    return ("usage: box [--root DIR] [--exec-root DIR] COMMAND [ARGS...]\n\n"
            f"A daemonless, docker-compatible container runtime.\nCommands: {verbs}\n"
            "Run 'box COMMAND --help' for more information on a command.\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = exec_root = None
    while argv and argv[0].startswith("--") and argv[0] not in ("--help", "--version"):
        flag, _, value = argv.pop(0).partition("=")
        if not value:
            if not argv:
                print(f"box: flag needs an argument: {flag}", file=sys.stderr)
                return 125
            value = argv.pop(0)
        if flag == "--root":
            root = value
        elif flag == "--exec-root":
            exec_root = value
        else:
            print(f"box: unknown flag: {flag}\nSee 'box --help'.", file=sys.stderr)
            return 125
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0
    if argv[0] == "--version":
        print("box version 0.1.0")
        return 0
    verb = argv.pop(0)
    if verb == "container" and argv:  # `box container ls` etc.
        verb = {"ls": "ps", "list": "ps"}.get(argv[0], argv[0])
        argv.pop(0)
    if verb == "image" and argv:
        verb = {"ls": "images", "list": "images", "rm": "rmi",
                "prune": "image_prune"}.get(argv[0], argv[0])  # `box image build` too
        argv.pop(0)
    if verb == "system" and argv and argv[0] == "df":
        verb = "system_df"
        argv.pop(0)
    if verb in ("network", "volume") and argv and not argv[0].startswith("-"):
        sub = argv.pop(0)  # `box network create` -> add_network_create / cmd_network_create
        verb = f"{verb}_{ {'list': 'ls', 'remove': 'rm'}.get(sub, sub) }"
    if verb not in COMMANDS:
        print(f"box: '{verb}' is not a box command.\nSee 'box --help'", file=sys.stderr)
        return 125
    from runtime.paths import ROOT_MODE, Paths, private_dir

    module = importlib.import_module(f"runtime.commands.{COMMANDS[verb]}")
    # run/create use -h for --hostname, as docker does; they add --help themselves.
    parser = FlagParser(prog=f"box {verb.replace('_', ' ')}", add_help=verb not in _RUNTIME_VERBS)
    getattr(module, f"add_{verb}")(parser)
    try:
        try:
            args = parser.parse_args(argv)
        except FlagError as e:
            raise UsageError(f"{e}\nSee '{parser.prog} --help'.") from None
        paths = Paths.from_env(root, exec_root)
        private_dir(paths.root, ROOT_MODE)
        return int(getattr(module, f"cmd_{verb}")(paths, args) or 0)
    except BoxError as e:
        print(f"box: {e}", file=sys.stderr)
        if (isinstance(e, UsageError) or verb in _RUNTIME_VERBS or e.exit_code in (126, 127)
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
