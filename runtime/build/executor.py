"""One handler per instruction: each turns the stage's current image into the next
one, through the cache (``Steps.step``). Metadata instructions only change the config
(an empty_layer history entry, as Docker records them); RUN, COPY and ADD add a layer."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from typing import Any

from formats.units import parse_duration_ns
from runtime.build.instructions import Instruction
from runtime.build.state import DEFAULT_SHELL, BuildState, env_list, env_map
from runtime.build.words import SubstitutionError, process_word, process_words

NOP = "/bin/sh -c #(nop) "


class StageRun:
    """A stage being built: its image so far, the ARGs in scope, the SHELL."""

    def __init__(self, builder: Any, state: BuildState, args: dict[str, str]) -> None:
        self.b = builder  # the Builder (Any: it imports this module, not the reverse)
        self.state = state
        self.args = args
        self.cmd_set = False

    @property
    def shell(self) -> list[str]:
        return list(self.state.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        """What ``$VAR`` sees: ARGs, then ENV over them (Docker's precedence)."""
        return {**self.args, **env_map(self.state.config.get("Env") or [])}

    def word(self, ins: Instruction, text: str) -> str:
        try:
            return process_word(text, self.env(), self.b.dockerfile.escape)
        except SubstitutionError as e:
            raise self.b.error(ins, str(e)) from None

    def words(self, ins: Instruction, text: str) -> list[str]:
        try:
            return process_words(text, self.env(), self.b.dockerfile.escape)
        except SubstitutionError as e:
            raise self.b.error(ins, str(e)) from None

    def meta(self, ins: Instruction, shown: str, change: dict[str, Any]) -> None:
        created_by = NOP + shown
        self.state = self.b.step(self.state, created_by,
                                 lambda: self.state.child(created_by, change))

    def execute(self, ins: Instruction) -> None:
        handler: Callable[[StageRun, Instruction], None] = self.b.handlers[ins.cmd]
        handler(self, ins)


def _pairs(run: StageRun, ins: Instruction) -> list[tuple[str, str]]:
    out = []
    for i in range(0, len(ins.args), 2):
        key = run.word(ins, ins.args[i])
        if not key:
            raise run.b.error(ins, f"{ins.cmd} names can not be blank")
        out.append((key, run.word(ins, ins.args[i + 1])))
    return out


def do_env(run: StageRun, ins: Instruction) -> None:
    env = env_map(run.state.config.get("Env") or [])
    pairs = _pairs(run, ins)
    env.update(pairs)
    run.meta(ins, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), {"Env": env_list(env)})


def do_label(run: StageRun, ins: Instruction) -> None:
    labels = dict(run.state.config.get("Labels") or {})
    pairs = _pairs(run, ins)
    labels.update(pairs)
    shown = " ".join(f"{k}={json.dumps(v)}" for k, v in pairs)
    run.meta(ins, "LABEL " + shown, {"Labels": labels})


def do_arg(run: StageRun, ins: Instruction) -> None:
    name, eq, default = ins.args[0].partition("=")
    value = run.b.arg_value(name, run.word(ins, default) if eq else None)
    if value is None:  # declared without a value: in scope, unset
        run.args.pop(name, None)
        run.meta(ins, f"ARG {name}", {})
        return
    run.args[name] = value
    run.meta(ins, f"ARG {name}={value}", {})


def do_workdir(run: StageRun, ins: Instruction) -> None:
    path = run.word(ins, ins.args[0])
    current = run.state.config.get("WorkingDir") or "/"
    path = posixpath.normpath(posixpath.join(current, path))
    run.meta(ins, f"WORKDIR {path}", {"WorkingDir": path})


def do_user(run: StageRun, ins: Instruction) -> None:
    user = run.word(ins, ins.args[0])
    run.meta(ins, f"USER {user}", {"User": user})


def do_expose(run: StageRun, ins: Instruction) -> None:
    ports = dict(run.state.config.get("ExposedPorts") or {})
    shown = []
    for arg in ins.args:
        for port in run.words(ins, arg):
            number, _, proto = port.partition("/")
            first, _, last = number.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise run.b.error(ins, f"invalid containerPort: {number}")
            for p in range(int(first), int(last or first) + 1):
                ports[f"{p}/{(proto or 'tcp').lower()}"] = {}
            shown.append(f"{number}/{(proto or 'tcp').lower()}")
    run.meta(ins, "EXPOSE " + " ".join(shown), {"ExposedPorts": ports})


def do_volume(run: StageRun, ins: Instruction) -> None:
    volumes = dict(run.state.config.get("Volumes") or {})
    paths = ([run.word(ins, a) for a in ins.args] if ins.json else
             [w for a in ins.args for w in run.words(ins, a)])
    for path in paths:
        if not path.strip():
            raise run.b.error(ins, "VOLUME specified can not be an empty string")
        volumes[path] = {}
    run.meta(ins, f"VOLUME {json.dumps(paths)}", {"Volumes": volumes})


def do_stopsignal(run: StageRun, ins: Instruction) -> None:
    sig = run.word(ins, ins.args[0])
    from runtime.containers import signal_number

    try:
        signal_number(sig)
    except Exception:
        raise run.b.error(ins, f"Invalid signal: {sig}") from None
    run.meta(ins, f"STOPSIGNAL {sig}", {"StopSignal": sig})


def do_shell(run: StageRun, ins: Instruction) -> None:
    run.meta(ins, f"SHELL {json.dumps(ins.args)}", {"Shell": list(ins.args)})


def _command(run: StageRun, ins: Instruction) -> list[str]:
    """Exec form as given; shell form through the stage's SHELL."""
    return list(ins.args) if ins.json else [*run.shell, ins.args[0]]


def do_cmd(run: StageRun, ins: Instruction) -> None:
    cmd = _command(run, ins)
    run.cmd_set = True
    run.meta(ins, f"CMD {json.dumps(cmd)}", {"Cmd": cmd})


def do_entrypoint(run: StageRun, ins: Instruction) -> None:
    entrypoint = _command(run, ins)
    change: dict[str, Any] = {"Entrypoint": entrypoint}
    if not run.cmd_set:  # Docker: an ENTRYPOINT resets the CMD the base image had
        change["Cmd"] = None
    run.meta(ins, f"ENTRYPOINT {json.dumps(entrypoint)}", change)


def do_healthcheck(run: StageRun, ins: Instruction) -> None:
    kind = ins.args[0].upper()
    if kind == "NONE":
        if len(ins.args) > 1 or ins.flags:
            raise run.b.error(ins, "HEALTHCHECK NONE takes no arguments")
        check: dict[str, Any] = {"Test": ["NONE"]}
    elif kind == "CMD" and len(ins.args) > 1:
        rest = ins.args[1:]
        if ins.json:
            check = {"Test": ["CMD", *rest]}
        else:
            check = {"Test": ["CMD-SHELL", " ".join(rest)]}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                          ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            value = ins.flag(flag)
            if value:
                try:
                    check[key] = parse_duration_ns(value)
                except ValueError:
                    raise run.b.error(ins, f"invalid --{flag} value {value!r}") from None
        retries = ins.flag("retries")
        if retries:
            if not retries.isdigit():
                raise run.b.error(ins, f"invalid --retries value {retries!r}")
            check["Retries"] = int(retries)
    else:
        raise run.b.error(ins, "HEALTHCHECK takes NONE or CMD followed by a command")
    run.meta(ins, f"HEALTHCHECK {json.dumps(check)}", {"Healthcheck": check})


def do_onbuild(run: StageRun, ins: Instruction) -> None:
    trigger = ins.original.split(None, 1)[1]
    triggers = [*(run.state.config.get("OnBuild") or []), trigger]
    run.meta(ins, f"ONBUILD {trigger}", {"OnBuild": triggers})


def do_maintainer(run: StageRun, ins: Instruction) -> None:
    author = run.word(ins, " ".join(ins.args))
    created_by = f"{NOP}MAINTAINER {author}"

    def make() -> BuildState:
        state = run.state.child(created_by)
        state.blob["author"] = author
        return BuildState(state.blob)

    run.state = run.b.step(run.state, created_by, make)


HANDLERS: dict[str, Callable[[StageRun, Instruction], None]] = {
    "ENV": do_env, "LABEL": do_label, "ARG": do_arg, "WORKDIR": do_workdir, "USER": do_user,
    "EXPOSE": do_expose, "VOLUME": do_volume, "STOPSIGNAL": do_stopsignal, "SHELL": do_shell,
    "CMD": do_cmd, "ENTRYPOINT": do_entrypoint, "HEALTHCHECK": do_healthcheck,
    "ONBUILD": do_onbuild, "MAINTAINER": do_maintainer,
}  # RUN, COPY and ADD: runtime.build.steps_io, joined in by the builder
