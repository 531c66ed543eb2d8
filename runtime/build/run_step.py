"""RUN: the command in a container the runtime itself creates and starts (the same
confinement, cgroup limits and networks as ``box run``), attached so its output streams
to the build's; the container's upper dir becomes the step's layer, and the container
goes whatever happened: no container, mount, cgroup or layer is left by a failure."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.build.layer import stage_upper
from runtime.build.mounts import filtered_copy, mount_layers, resolve_in_root
from runtime.build.progress import LinePump, PlainProgress
from runtime.containers import StatusReader
from runtime.errors import BoxError, InvalidArgument
from runtime.images.store import Image, ImageStore, StagedLayer
from runtime.paths import Paths

if TYPE_CHECKING:
    from runtime.build.context import Context


class RunFailed(BoxError):
    """A RUN command exited non-zero: docker's message, the command's exit code."""

    command_exit = True  # `box build` exits with it, as docker's classic builder does
    progress_text = ""  # the same failure in BuildKit's words (--progress plain)


@dataclass
class Limits:
    """``box build``'s flags that every RUN container gets, as ``box run`` takes them."""

    memory: str | None = None
    cpus: str | None = None
    network: str | None = None


@dataclass
class RunMount:
    """One ``RUN --mount``: a host directory bound at ``target`` (or a tmpfs)."""

    kind: str
    target: str
    source: str = ""
    readonly: bool = False
    layer_dirs: list[str] | None = None  # from=<stage>: an overlay of it for the step
    subpath: str = ""  # source= inside the stage or the context
    context: Context | None = None  # type=bind from the context: a filtered copy is bound
    where: str = ""  # the instruction, for a source that is not there


@dataclass
class RunSpec:
    argv: list[str]
    env: list[str]  # build args in scope, beside the image's Env
    network: str | None = None
    mounts: list[RunMount] = field(default_factory=list)


def cache_mount_dir(root: str, mount_id: str) -> str:
    """``--mount=type=cache``: one directory per id, kept between builds."""
    path = os.path.join(root, "build", "cache-mounts",
                        hashlib.sha256(mount_id.encode()).hexdigest()[:32])
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


def _flags(spec: RunSpec, limits: Limits, image: Image, work: str) -> list[str]:
    cfg = image.config
    argv = ["--entrypoint", "", "--log-opt", "max-size=10m"]
    network = spec.network or limits.network
    if network:
        argv += ["--network", network]
    if limits.memory:
        argv += ["-m", limits.memory]
    if limits.cpus:
        argv += ["--cpus", limits.cpus]
    if cfg.get("User"):
        argv += ["-u", cfg["User"]]
    if cfg.get("WorkingDir"):
        argv += ["-w", cfg["WorkingDir"]]
    for item in spec.env:
        argv += ["-e", item]
    for n, m in enumerate(spec.mounts):
        if m.kind == "tmpfs":
            argv += ["--tmpfs", m.target]
            continue
        try:
            source = _bind_source(m, n, work)
        except InvalidArgument as e:
            raise InvalidArgument(f"{m.where}: --mount source: {e}") from None
        opt = f"type=bind,source={source},target={m.target}"
        argv += ["--mount", opt + (",readonly" if m.readonly else "")]
    return [*argv, "box-build-step", *spec.argv]


def _bind_source(m: RunMount, n: int, work: str) -> str:
    """The host path a bind mount binds: a filtered copy of the context (written into
    and thrown away when ``rw``), or ``source=`` in an overlay of the stage (its writes
    kept in scratch when ``rw``), or a directory of the host (a cache mount)."""
    if m.context is not None:
        return filtered_copy(m.context, m.subpath, os.path.join(work, f"ctx{n}"))
    if m.layer_dirs is None:
        return m.source
    root = os.path.join(work, f"from{n}")
    mount_layers(m.layer_dirs, root, os.path.join(work, "empty"),
                 "" if m.readonly else os.path.join(work, f"rw{n}"))
    return resolve_in_root(root, m.subpath)


def _unmount_sources(work: str) -> None:
    from runtime import syscalls as sc

    for name in os.listdir(work):
        if name.startswith("from"):
            with contextlib.suppress(OSError):
                sc.umount2(os.path.join(work, name), 2)  # MNT_DETACH


def _wait(status: StatusReader) -> int:
    code, errors = 125, []
    while True:
        kind, rest = status.next()
        if kind == "exit":
            code = int(rest) if rest.lstrip("-").isdigit() else 125
            break
        if kind == "error":
            errors.append(rest.partition(" ")[2])
        if kind == "eof":
            errors.append("the step's container ended without an exit code")
            break
    status.close()
    if errors and code == 125:
        raise BoxError(errors[0])
    return code


def run(paths: Paths, store: ImageStore, image: Image, spec: RunSpec, limits: Limits,
        work: str, quiet: bool, plain: PlainProgress | None = None) -> StagedLayer:
    """Runs ``spec`` on ``image``; its changes staged as a layer (RunFailed on a
    non-zero exit)."""
    from runtime.commands.run import add_run
    from runtime.containers import Containers
    from runtime.create import create
    from runtime.flags import FlagParser

    parser = FlagParser(prog="box build", add_help=False)
    add_run(parser)
    containers = Containers(paths)
    cid = ""
    captured = tempfile.TemporaryFile() if quiet else None
    pump = LinePump(plain) if plain is not None and not quiet else None
    quiet = quiet or plain is not None
    try:
        opts = parser.parse_args(_flags(spec, limits, image, work))
        cid = create(paths, opts, image=image)["ID"]
        if not quiet:
            print(f" ---> Running in {cid[:12]}")
        sys.stdout.flush()
        saved = _redirect(captured.fileno() if captured is not None else
                          pump.write_fd if pump is not None else None)
        try:
            _, monitor, status = containers.start(cid, attached=True)
        finally:
            _restore(saved)
            if pump is not None:
                pump.close_writer()
        code = _wait(status) if status is not None else 125
        with contextlib.suppress(ChildProcessError):
            os.waitpid(monitor, 0)
        if pump is not None:
            pump.close()
        if code != 0:
            if captured is not None:
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
            shown = " ".join(spec.argv)
            failed = RunFailed(f"The command '{shown}' returned a non-zero code: {code}",
                               exit_code=code if 0 < code < 256 else 1)
            failed.progress_text = (f'process "{shown}" did not complete successfully: '
                                    f"exit code: {code}")  # BuildKit's words
            raise failed
        skip = {m.target.strip("/") for m in spec.mounts}
        upper = os.path.join(paths.overlay_dir(cid), "diff")
        return stage_upper(store, upper, work, skip)
    finally:
        if captured is not None:
            captured.close()
        if pump is not None:
            pump.close()
        _unmount_sources(work)
        if cid:
            with contextlib.suppress(BoxError):
                containers.remove(cid, force=True)
                if not quiet:
                    print(f"Removing intermediate container {cid[:12]}", flush=True)


def _redirect(to: int | None) -> tuple[int, int] | None:
    """The step's output into the fd ``to`` (-q's file, plain's pipe): the monitor
    inherits fds 1 and 2."""
    if to is None:
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    os.dup2(to, 1)
    os.dup2(to, 2)
    return saved


def _restore(saved: tuple[int, int] | None) -> None:
    if saved is not None:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def parse_mount(text: str, line: str) -> dict[str, str]:
    """``--mount=type=cache,target=/x,...`` as key -> value; InvalidArgument names the
    instruction."""
    kv: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        kv[key.strip().lower()] = value if eq else "true"
    kind = kv.setdefault("type", "bind")
    if kind not in ("bind", "cache", "tmpfs"):
        raise InvalidArgument(f"{line}: --mount type={kind} is not supported "
                              "(bind, cache and tmpfs are)")
    target = kv.get("target") or kv.get("dst") or kv.get("destination")
    if not target:
        raise InvalidArgument(f"{line}: --mount {text}: target is required")
    kv["target"] = target
    return kv
