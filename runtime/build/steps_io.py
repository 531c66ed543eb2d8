"""The two instructions that touch files: RUN (a container) and COPY/ADD (an overlay),
each planned here from its flags, keyed for the cache, and turned into a layer."""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import TYPE_CHECKING

from runtime.build import copy_step, run_step
from runtime.build.copy_flags import (
    Skip,
    bool_flag,
    drop_excluded_matches,
    exclude_matcher,
    split_parents,
)
from runtime.build.instructions import Instruction
from runtime.build.mounts import scratch
from runtime.build.state import BuildState, env_map

if TYPE_CHECKING:
    from runtime.build.executor import StageRun

_URL = re.compile(r"^(https?://|git@|git://)", re.IGNORECASE)


def _argv(run: StageRun, ins: Instruction) -> list[str]:
    """Exec form as given; shell form, heredocs included, through the SHELL."""
    if ins.json:
        return list(ins.args)
    text = ins.args[0]
    if ins.heredocs:
        first = text.strip()
        if len(ins.heredocs) == 1 and first.startswith("<<") and " " not in first:
            text = ins.heredocs[0][1]  # RUN <<EOF: the heredoc is the script
        else:  # the shell reads the heredocs itself
            text += "\n" + "".join(f"{body}{name}\n" for name, body in ins.heredocs)
    return [*run.shell, text]


def _mounts(run: StageRun, ins: Instruction) -> list[run_step.RunMount]:
    mounts = []
    for text in ins.flags.get("mount", []):
        kv = run_step.parse_mount(run.word(ins, text), run.b.where(ins))
        target = posixpath.join(run.state.config.get("WorkingDir") or "/", kv["target"])
        if kv["type"] == "tmpfs":
            mounts.append(run_step.RunMount("tmpfs", target))
            continue
        if kv["type"] == "cache":
            key = kv.get("id") or target
            source = run_step.cache_mount_dir(run.b.paths.root, key)
            mounts.append(run_step.RunMount("cache", target, source,
                                            readonly=kv.get("readonly", kv.get("ro")) == "true"))
            continue
        src = kv.get("source") or kv.get("src") or "/"
        rw = kv.get("rw", kv.get("readwrite")) == "true"
        where = run.b.where(ins)
        if kv.get("from"):
            base = run.b.from_ref(ins, kv["from"])
            layers = [run.b.store.layer_dir(d) for d in reversed(base.diff_ids)]
            mounts.append(run_step.RunMount("bind", target, layer_dirs=layers, readonly=not rw,
                                            subpath=src, where=where))
        else:
            rel = run.b.context_sources(ins, src)[0]
            mounts.append(run_step.RunMount("bind", target, readonly=not rw, subpath=rel,
                                            context=run.b.context, where=where))
    return mounts


def run_instruction(run: StageRun, ins: Instruction) -> None:
    argv = _argv(run, ins)
    network = ins.flag("network")
    if network not in (None, "default", "none", "host"):
        raise run.b.error(ins, f"invalid --network value {network!r} (default, none, host)")
    if ins.flag("security") not in (None, "sandbox"):
        raise run.b.error(ins, "--security=insecure is not allowed")
    mounts = _mounts(run, ins)
    env_keys = env_map(run.state.config.get("Env") or []).keys()
    build_env = [f"{k}={v}" for k, v in sorted(run.args.items()) if k not in env_keys]
    prefix = f"|{len(build_env)} {' '.join(build_env)} " if build_env else ""
    created_by = prefix + " ".join(argv)
    # what a bind mount shows is part of the key: the context's files, the stage's layers
    sources = [m.context.checksum([m.subpath]) if m.context is not None else m.layer_dirs
               for m in mounts if m.kind == "bind"]
    key = json.dumps({"run": argv, "args": build_env, "network": network,
                      "mounts": [ins.flags.get("mount", [])], "sources": sources})

    def make() -> BuildState:
        spec = run_step.RunSpec(argv, build_env, None if network == "default" else network,
                                mounts)
        with scratch(run.b.paths.root) as work:
            image = run.state.image(run.b.store)
            layer = run_step.run(run.b.paths, run.b.store, image, spec, run.b.limits, work,
                                 run.b.quiet, run.b.plain)
            try:
                run.b.store.store_layer(layer)
            finally:
                layer.discard()
        return run.state.child(created_by, diff_id=layer.diff_id)

    run.state = run.b.step(run.state, "RUN " + key, make)


def _chmod(run: StageRun, ins: Instruction) -> int | None:
    text = ins.flag("chmod")
    if text is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise run.b.error(ins, f"invalid chmod parameter {text!r}: an octal mode is needed")
    return int(text, 8)


def copy_instruction(run: StageRun, ins: Instruction) -> None:
    b = run.b
    add = ins.cmd == "ADD"
    if ins.flag("checksum") is not None or ins.flag("keep-git-dir") is not None:
        raise b.error(ins, "--checksum and --keep-git-dir apply to remote sources, which "
                           "box build does not fetch")
    words = [run.word(ins, a) for a in ins.args]
    *srcs, dest = words
    workdir = run.state.config.get("WorkingDir") or "/"
    dest_abs = posixpath.normpath(posixpath.join(workdir, dest))
    if dest.endswith("/") or dest.endswith("/.") or dest == ".":
        dest_abs = dest_abs.rstrip("/") + "/"
    heredocs = dict(ins.heredocs)
    from_ref = ins.flag("from")
    link, parents = bool_flag(ins.flag("link")), bool_flag(ins.flag("parents"))
    if link is None or parents is None:
        raise b.error(ins, "--link and --parents take true or false")
    try:
        exclude = exclude_matcher([run.word(ins, p) for p in ins.flags.get("exclude", [])])
    except ValueError as e:
        raise b.error(ins, f"--exclude: {e}") from None
    sources: list[copy_step.Source] = []
    digest_parts: list[str] = []
    wildcard = False
    with scratch(b.paths.root) as work:
        docs_dir = os.path.join(work, "heredocs")
        for src in srcs:
            pivot, path = split_parents(src) if parents else (None, src)
            if pivot:
                path = f"{pivot}/{path}"
            if src.startswith("<<") and src[2:].lstrip("-") in heredocs:
                name = src[2:].lstrip("-")
                os.makedirs(docs_dir, exist_ok=True)
                with open(os.path.join(docs_dir, name), "w") as f:
                    f.write(heredocs[name])
                os.chmod(os.path.join(docs_dir, name), 0o644)
                sources.append(copy_step.Source([name], root=docs_dir))
                digest_parts.append(f"heredoc:{name}:{heredocs[name]}")
            elif _URL.match(src):
                raise b.error(ins, f"{ins.cmd} from a URL ({src}) is not supported: builds "
                                   "run without network (download it into the context)")
            elif from_ref:
                base = b.from_ref(ins, from_ref)
                layers = [b.store.layer_dir(d) for d in reversed(base.diff_ids)]
                wildcard = wildcard or bool(re.search(r"[*?\[]", src))
                sources.append(copy_step.Source([path], layer_dirs=layers, keep_owner=True,
                                                skip=Skip(None, exclude, path) if exclude
                                                else None, parents=pivot))
                digest_parts.append(f"from:{base.id}:{src}")
            else:
                rels = drop_excluded_matches(path, b.context_sources(ins, path), exclude)
                wildcard = wildcard or bool(re.search(r"[*?\[]", src))
                for rel in rels:
                    skip = Skip(b.context, exclude, rel)
                    sources.append(copy_step.Source([rel], root=b.context.root, skip=skip,
                                                    parents=pivot))
                    digest_parts.append(f"context:{rel}:{b.context.checksum([rel], skip)}")
        many = len(srcs) > 1 or wildcard or sum(len(s.rels) for s in sources) > 1
        if many and not dest_abs.endswith("/"):
            raise b.error(ins, f"When using {ins.cmd} with more than one source file, the "
                               "destination must be a directory and end with a /")
        plan = copy_step.CopyPlan(sources, dest_abs, ins.flag("chown"), _chmod(run, ins),
                                  unpack=add, many=many, link=link and _chmod(run, ins) is None,
                                  lowers=[b.store.layer_dir(d)
                                          for d in reversed(run.state.diff_ids)])
        shown = f"{ins.cmd} {' '.join(words)}"
        key = json.dumps({"copy": ins.cmd, "flags": ins.flags, "words": words,
                          "files": digest_parts})
        created_by = f"/bin/sh -c #(nop) {shown} in {dest_abs}"

        def make() -> BuildState:
            upper = copy_step.apply_copy(plan, work)
            from runtime.build.layer import stage_upper

            layer = stage_upper(b.store, upper, work)
            try:
                b.store.store_layer(layer)
            finally:
                layer.discard()
            return run.state.child(created_by, diff_id=layer.diff_id)

        run.state = b.step(run.state, key, make)
