"""A build: the stages the target needs, in order, each step through the cache, with
docker's output (``Step N/M : ...``, `` ---> Using cache``, `` ---> <id>``,
``Successfully built``, ``Successfully tagged``); the result committed to the image
store under the ``-t`` names."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.build.cache import BuildCache
from runtime.build.context import Context
from runtime.build.executor import HANDLERS, StageRun
from runtime.build.instructions import BuildSyntaxError, Dockerfile, Instruction, Stage, parse
from runtime.build.progress import (
    VERTEX_INSTRUCTIONS,
    PlainProgress,
    full_reference,
    stage_prefix,
)
from runtime.build.run_step import Limits
from runtime.build.state import BuildState, encode, host_platform
from runtime.build.steps_io import copy_instruction, run_instruction
from runtime.build.words import SubstitutionError, display_text, process_word
from runtime.errors import BoxError, InvalidArgument, NotFound
from runtime.images.store import ImageStore
from runtime.paths import Paths


@dataclass
class BuildOptions:
    context: str
    dockerfile: str = ""  # path; default CONTEXT/Dockerfile
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    progress: str = "auto"  # auto: docker's classic output; plain: BuildKit's plain one
    limits: Limits = field(default_factory=Limits)


class Builder:
    def __init__(self, paths: Paths, opts: BuildOptions) -> None:
        self.paths = paths
        self.opts = opts
        self.quiet = opts.quiet
        self.limits = opts.limits
        self.store = ImageStore(paths.root)
        self.cache = BuildCache(paths.root, self.store)
        self.context = Context(opts.context)
        path = opts.dockerfile or os.path.join(opts.context, "Dockerfile")
        self.shown_path = opts.dockerfile or "Dockerfile"
        try:
            with open(path) as f:
                source = f.read()
        except OSError as e:
            raise NotFound(f"unable to read Dockerfile {path}: {e.strerror}") from None
        self.dockerfile: Dockerfile = parse(source, self.shown_path)
        self.results: dict[int, BuildState] = {}
        self.used_args: set[str] = set()
        self.global_args: dict[str, str] = {}
        self.step_no = 0
        self.total = 0
        # plain progress writes to its own copy of stderr: a RUN step's fds 1 and 2 are a
        # pipe to the progress while its container starts
        self.plain = (PlainProgress(os.fdopen(os.dup(2), "w"))
                      if opts.progress == "plain" and not opts.quiet else None)
        self.source_size = len(source.encode())
        self.stage_label, self.stage_index, self.stage_total = "", 0, 0
        self.handlers = {**HANDLERS, "RUN": run_instruction, "COPY": copy_instruction,
                         "ADD": copy_instruction}

    # ---- what handlers call ---------------------------------------------------------

    def where(self, ins: Instruction) -> str:
        return f"{self.shown_path}:{ins.line}: {ins.text}"

    def error(self, ins: Instruction, reason: str) -> BuildSyntaxError:
        return BuildSyntaxError(f"{self.where(ins)}: {reason}")

    def say(self, text: str) -> None:
        """A line of docker's classic output (none with -q or --progress plain)."""
        if not self.quiet and self.plain is None:
            print(text, flush=True)

    def arg_value(self, name: str, default: str | None) -> str | None:
        """An ARG's value: --build-arg, else its default, else the global one's."""
        if name in self.opts.build_args:
            self.used_args.add(name)
            return self.opts.build_args[name]
        if default is not None:
            return default
        return self.global_args.get(name)

    def step(self, parent: BuildState, key: str, make: Callable[[], BuildState]) -> BuildState:
        """Docker's cache rule: the same parent and the same instruction (for COPY/ADD
        the same files) reuse the earlier result; otherwise ``make`` builds it."""
        cached = None if self.opts.no_cache else self.cache.get(parent, key)
        if cached is not None:
            self.say(" ---> Using cache")
            if self.plain is not None:
                self.plain.cached()
            state = cached
        else:
            try:
                state = make()
            except BoxError as e:
                if self.plain is not None:
                    self.plain.error(getattr(e, "progress_text", "") or str(e))
                raise
            self.cache.put(parent, key, state)
            if self.plain is not None:
                self.plain.done()
        self.say(f" ---> {state.id[7:19]}")
        return state

    def context_sources(self, ins: Instruction, src: str) -> list[str]:
        try:
            rels = self.context.sources(src)
        except NotFound as e:
            raise BoxError(f"{self.where(ins)}: {ins.cmd} failed: {e}") from None
        if not rels:
            raise BoxError(f"{self.where(ins)}: {ins.cmd} failed: no source files were "
                           f"specified ({src})")
        return rels

    def from_ref(self, ins: Instruction, ref: str) -> BuildState:
        """``--from``: a stage (name or index) built before, or an image."""
        stage = self._stage_named(ref)
        if stage is not None:
            if stage.index not in self.results:
                raise self.error(ins, f"stage {ref!r} is not built before this one")
            return self.results[stage.index]
        return self._image(ins, ref)

    # ---- stages ---------------------------------------------------------------------

    def _stage_named(self, ref: str) -> Stage | None:
        stages = self.dockerfile.stages
        if ref.isdigit():
            return stages[int(ref)] if int(ref) < len(stages) else None
        return next((s for s in stages if s.name and s.name == ref.lower()), None)

    def _image(self, ins: Instruction | None, ref: str) -> BuildState:
        """An image by reference: the store's, else pulled as docker does when the
        reference names a registry (builds have no other network to pull through)."""
        try:
            image = self.store.resolve(ref)
        except NotFound:
            where = f"{self.where(ins)}: " if ins else ""
            image = self._pull(where, ref)
        return BuildState.from_image(self.store, image.id)

    def _pull(self, where: str, ref: str):  # -> Image
        from runtime.images.progress import Progress
        from runtime.images.pull import parse_remote, pull

        try:
            remote = parse_remote(ref)
        except BoxError as e:
            raise InvalidArgument(f"{where}{e}") from None
        if remote.domain == "docker.io" and not ref.startswith("docker.io/"):
            raise NotFound(f"{where}image {ref!r} not found locally, and its name has no "
                           f"registry to pull it from (box pull it first)")
        progress = Progress(sys.stdout, enabled=False)
        progress.message = (lambda text: None) if self.quiet else self.say
        try:
            shown = pull(self.store, ref, [], progress)
            return self.store.resolve(shown)
        except BoxError as e:
            raise BoxError(f"{where}pulling {ref}: {str(e).splitlines()[0]}") from None
        except OSError as e:
            raise BoxError(f"{where}pulling {ref}: {e.strerror or e}") from None

    def _base_text(self, stage: Stage) -> str:
        try:
            return process_word(stage.base, self.global_args, self.dockerfile.escape)
        except SubstitutionError as e:
            raise BuildSyntaxError(f"{self.shown_path}:{stage.line}: {stage.original}: {e}"
                                   ) from None

    def _needed(self, target: Stage) -> list[Stage]:
        """The target and every stage it reaches through FROM, --from and --mount from=."""
        need: set[int] = set()

        def visit(stage: Stage) -> None:
            if stage.index in need:
                return
            need.add(stage.index)
            refs = [self._base_text(stage)]
            for ins in stage.steps:
                refs += ins.flags.get("from", [])
                refs += re.findall(r"(?:^|,)from=([^,]+)", ",".join(ins.flags.get("mount", [])))
            for ref in refs:
                dep = self._stage_named(ref)
                if dep is not None and dep.index < stage.index:
                    visit(dep)
                elif dep is not None and not ref.isdigit() and dep.index >= stage.index:
                    raise BuildSyntaxError(f"{self.shown_path}:{stage.line}: {stage.original}:"
                                           f" stage {ref!r} is not defined before it")

        visit(target)
        return [s for s in self.dockerfile.stages if s.index in need]

    def _global_args(self) -> None:
        for ins in self.dockerfile.global_args:
            name, eq, default = ins.args[0].partition("=")
            try:
                value = process_word(default, self.global_args, self.dockerfile.escape)
            except SubstitutionError as e:
                raise self.error(ins, str(e)) from None
            got = self.arg_value(name, value if eq else None)
            if got is not None:
                self.global_args[name] = got

    def _from(self, stage: Stage) -> StageRun:
        base = self._base_text(stage)
        where = f"{self.shown_path}:{stage.line}: {stage.original}"
        if stage.platform:
            platform = process_word(stage.platform, self.global_args, self.dockerfile.escape)
            if platform not in (host_platform(), "$BUILDPLATFORM", "$TARGETPLATFORM"):
                raise InvalidArgument(f"{where}: platform {platform} is not this host's "
                                      f"({host_platform()})")
        self._say_step(stage.original)
        if base.lower() == "scratch":
            state = BuildState.scratch()
        else:
            dep = self._stage_named(base)
            from_image = not (dep is not None and dep.index < stage.index)
            if self.plain is not None and from_image and base:
                self._plain_vertex(f"FROM {full_reference(base)}")
            try:
                state = (self.results[dep.index] if not from_image
                         else self._image(None, base) if base else None)
            except BoxError as e:
                if self.plain is not None:
                    self.plain.error(str(e))
                raise
            if state is None:
                raise BuildSyntaxError(f"{where}: base name ({stage.base}) should not be blank")
            if self.plain is not None:
                self.plain.done()
        self.say(f" ---> {state.id[7:19]}")
        run = StageRun(self, state, {})
        triggers = state.config.get("OnBuild") or []
        if triggers:
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            blob = dict(state.blob)
            blob["config"] = {k: v for k, v in state.config.items() if k != "OnBuild"}
            run.state = BuildState(blob)
            for text in triggers:
                for ins in parse(f"FROM scratch\n{text}\n", self.shown_path).stages[0].steps:
                    ins.line = stage.line
                    if self.plain is not None and ins.cmd in VERTEX_INSTRUCTIONS:
                        self.plain.vertex(f"ONBUILD {ins.text}")
                    run.execute(ins)
        return run

    def _say_step(self, text: str, ins: Instruction | None = None,
                  env: dict[str, str] | None = None) -> None:
        """Docker's classic builder shows the step as written; BuildKit's plain progress
        names the vertex with the stage's variables substituted."""
        self.step_no += 1
        self.say(f"Step {self.step_no}/{self.total} : {text}")
        if self.plain is not None and ins is not None and ins.cmd in VERTEX_INSTRUCTIONS:
            self._plain_vertex(display_text(text, env or {}, self.dockerfile.escape))

    def _plain_vertex(self, text: str) -> None:
        assert self.plain is not None
        self.stage_index += 1
        self.plain.vertex(stage_prefix(self.stage_label, self.stage_index, self.stage_total)
                          + text)

    def _plain_stage(self, stage: Stage) -> None:
        """BuildKit's vertex names for a stage: its name (``stage-N`` when unnamed, none
        when the Dockerfile has one stage), and a count of the steps that make a
        vertex (FROM an image, RUN, COPY, ADD, WORKDIR)."""
        base = self._base_text(stage)
        dep = self._stage_named(base)
        from_image = base.lower() != "scratch" and not (dep is not None
                                                        and dep.index < stage.index)
        self.stage_label = ("" if len(self.dockerfile.stages) == 1
                            else stage.name or f"stage-{stage.index}")
        self.stage_index = 0
        self.stage_total = int(from_image) + sum(ins.cmd in VERTEX_INSTRUCTIONS
                                                 for ins in stage.steps)

    def _plain_start(self) -> None:
        from runtime.format.human import human_size

        assert self.plain is not None
        self.plain.simple(f"[internal] load build definition from "
                          f"{os.path.basename(self.shown_path)}",
                          f"transferring dockerfile: {self.source_size}B done")
        self.plain.simple("[internal] load .dockerignore",
                          f"transferring context: {len(self.context.matcher.patterns)} "
                          f"patterns done")
        self.plain.simple("[internal] load build context",
                          f"transferring context: {human_size(self.context.size())} done")

    def _plain_export(self, image_id: str) -> None:
        assert self.plain is not None
        self.plain.simple("exporting to image", "exporting layers done",
                          f"writing image {image_id} done",
                          *(f"naming to {full_reference(t)} done" for t in self.opts.tags))

    # ---- the build ------------------------------------------------------------------

    def build(self) -> str:
        """Builds the target; returns the image ID (sha256:...)."""
        from runtime.format.human import human_size

        self._global_args()
        stages = self.dockerfile.stages
        target = stages[-1]
        if self.opts.target:
            found = self._stage_named(self.opts.target)
            if found is None or found.index >= len(stages) or self.opts.target.isdigit():
                raise InvalidArgument(f"target stage {self.opts.target!r} could not be found")
            target = found
        needed = self._needed(target)
        self.total = sum(1 + len(s.steps) for s in needed)
        self.say(f"Sending build context to box  {human_size(self.context.size())}")
        if self.plain is not None:
            self._plain_start()
        for stage in needed:
            if self.plain is not None:
                self._plain_stage(stage)
            run = self._from(stage)
            for ins in stage.steps:
                self._say_step(ins.text, ins, run.env())
                run.execute(ins)
            self.results[stage.index] = run.state
        final = self.results[target.index]
        if self.opts.labels:
            labels = {**(final.config.get("Labels") or {}), **self.opts.labels}
            key = "/bin/sh -c #(nop) LABEL " + " ".join(f"{k}={v}" for k, v in
                                                          sorted(self.opts.labels.items()))
            quiet, self.quiet = self.quiet, True
            final = self.step(final, key, lambda: final.child(key, {"Labels": labels}))
            self.quiet = quiet
        unused = sorted(set(self.opts.build_args) - self.used_args)
        if unused:
            print(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed",
                  file=sys.stderr)
        image_id = self._commit(final)
        if self.plain is not None:
            self._plain_export(image_id)
        return image_id

    def _commit(self, final: BuildState) -> str:
        try:
            stored = self.store.config_bytes(final.id)
        except FileNotFoundError:
            stored = None
        if stored is not None:  # an image already (the base itself, or built before)
            self.store.add_refs(final.id, self.opts.tags)
            return final.id
        return self.store.commit(encode(final.blob), [], self.opts.tags)
