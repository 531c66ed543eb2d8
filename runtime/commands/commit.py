"""``box commit``: a container's writable layer as a new image on top of its own.

One implementation with ``box build``: the upper dir becomes a layer through
``runtime.build.layer.stage_upper`` (whiteouts and opaque directories turned into OCI
ones, box's mount points left out, staged and stored as pulled layers are) and the
config grows through ``BuildState.child``. As docker does, the image config is the
container's (its Cmd, Env, Labels ...) with ``-c`` changes applied on top.
"""

from __future__ import annotations

from runtime.errors import Conflict
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

# Container Config keys an image config carries (docker's ContainerConfig -> Config).
_IMAGE_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "Volumes", "WorkingDir",
               "Entrypoint", "OnBuild", "Labels", "StopSignal", "Shell")


def add_commit(p: FlagParser) -> None:
    p.add_argument("-a", "--author", help='Author (e.g., "John Hannibal Smith '
                   '<hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[],
                   help="Apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", help="Commit message")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="Pause container during commit")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def image_config(container_config: dict, changes: list[str]) -> dict:
    """The new image's ``config``: the container's, then each ``-c`` instruction (ENV
    replaces a variable of the same name, LABEL and EXPOSE add, the others set)."""
    from runtime.build.state import env_list, env_map
    from runtime.commands.images import parse_changes

    config = {k: container_config[k] for k in _IMAGE_KEYS if container_config.get(k)}
    change = parse_changes(changes)
    for key, value in change.items():
        if key == "Env":
            config["Env"] = env_list({**env_map(config.get("Env") or []), **env_map(value)})
        elif key in ("Labels", "ExposedPorts", "Volumes"):
            config[key] = {**(config.get(key) or {}), **value}
        else:
            config[key] = value
    return config


def cmd_commit(paths: Paths, args: Namespace) -> int:
    import os

    from runtime.build.layer import stage_upper
    from runtime.build.state import BuildState
    from runtime.images.reference import parse_ref
    from runtime.images.store import ImageStore
    from runtime.state import Store

    refs = []
    if args.reference:
        name, tag = parse_ref(args.reference)
        refs.append(f"{name}:{tag}")
    store = Store(paths)
    cfg = store.load(store.resolve(args.container))
    config = image_config(cfg.get("Config") or {}, args.change)
    images = ImageStore(paths.root)
    base = BuildState.from_image(images, cfg["Image"])
    upper = os.path.join(paths.overlay_dir(cfg["ID"]), "diff")
    if not os.path.isdir(upper):
        raise Conflict(f"container {cfg['ID'][:12]} has no writable layer to commit")
    skip = {str(m.get("Destination", "")).strip("/")
            for m in (cfg.get("MountPoints") or {}).values() if isinstance(m, dict)}
    from contextlib import nullcontext

    from runtime.journal import container_event
    from runtime.pause import paused_while

    # moby: paused from reading the layer until the commit event, unpaused after
    with paused_while(store, cfg) if args.pause else nullcontext():
        staged = stage_upper(images, upper, images.layers, skip - {""})
        try:
            image_id = _store(images, base, staged, cfg, config, args, refs)
        finally:
            staged.discard()  # what commit did not move into the store
        container_event(paths.root, cfg, "commit", comment=args.message or "",
                        imageID=image_id, imageRef=refs[0] if refs else "")
    print(image_id)
    return 0


def _store(images, base, staged, cfg: dict, config: dict, args: Namespace,
           refs: list[str]) -> str:
    from runtime.build.state import encode

    created_by = " ".join([cfg.get("Path", ""), *(cfg.get("Args") or [])]).strip()
    child = base.child(created_by, diff_id=staged.diff_id)
    blob = child.blob
    blob["config"] = config
    blob["container"] = cfg["ID"]
    if args.author:
        blob["author"] = args.author
    if args.message:
        blob["history"][-1]["comment"] = args.message
    return images.commit(encode(blob), [staged], refs)
