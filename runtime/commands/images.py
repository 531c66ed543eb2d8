"""``box import``, ``images``, ``rmi``, ``tag``."""

from __future__ import annotations

import sys

from runtime.errors import BoxError, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Digest": "DIGEST"}


def _store(paths: Paths):  # noqa: ANN202 - lazy import keeps `box run` light
    from runtime.images.store import ImageStore

    return ImageStore(paths.root)


def add_import(p: FlagParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")


def _parse_changes(changes: list[str]) -> dict:
    """Dockerfile instructions ``docker import -c`` accepts: CMD, ENTRYPOINT, ENV, WORKDIR,
    USER, LABEL, EXPOSE, STOPSIGNAL."""
    import json
    import shlex

    out: dict = {}
    for change in changes:
        inst, _, rest = change.strip().partition(" ")
        inst = inst.upper()
        rest = rest.strip()
        if inst in ("CMD", "ENTRYPOINT"):
            value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            out["Cmd" if inst == "CMD" else "Entrypoint"] = value
        elif inst == "ENV":
            key, sep, val = rest.partition("=")
            if not sep:
                key, _, val = rest.partition(" ")
            out.setdefault("Env", []).append(f"{key}={val.strip()}")
        elif inst == "WORKDIR":
            out["WorkingDir"] = rest
        elif inst == "USER":
            out["User"] = rest
        elif inst == "STOPSIGNAL":
            out["StopSignal"] = rest
        elif inst == "EXPOSE":
            for port in rest.split():
                out.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif inst == "LABEL":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                out.setdefault("Labels", {})[k] = v
        else:
            raise InvalidArgument(f"{inst} is not a valid change command")
    return out


def cmd_import(paths: Paths, args: Namespace) -> int:
    changes = _parse_changes(args.change)
    ref = args.reference
    if not ref:
        raise InvalidArgument("box import needs a NAME[:TAG] for the image")
    if args.file == "-":
        image_id = _store(paths).import_tarball(sys.stdin.buffer, ref, changes)
    else:
        try:
            f = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise BoxError(f"open {args.file}: {e.strerror.lower()}") from None
        with f:
            image_id = _store(paths).import_tarball(f, ref, changes)
    print(image_id)
    return 0


class _ImageRow:
    def __init__(self, img, tag: str | None, trunc: bool) -> None:  # noqa: ANN001
        from runtime.format.human import human_size, time_ago
        from runtime.timeutil import parse_rfc3339

        repo, _, t = (tag or "<none>:<none>").rpartition(":")
        self.Repository = repo
        self.Tag = t
        self.ID = img.short_id if trunc else img.id
        self.CreatedSince = time_ago(parse_rfc3339(img.created))
        self.CreatedAt = img.created
        self.Size = human_size(img.size)
        self.Digest = "<none>"


def add_images(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("repository", nargs="?")


def cmd_images(paths: Paths, args: Namespace) -> int:
    from runtime.format import render_format
    from runtime.images.store import parse_ref

    rows = []
    want = None
    if args.repository:
        want = args.repository if ":" in args.repository else None
        want_repo = parse_ref(args.repository)[0]
    for img in _store(paths).list():
        tags = img.repo_tags or [None]
        for tag in tags:
            if args.repository:
                if tag is None or tag.rpartition(":")[0] != want_repo:
                    continue
                if want and tag != ":".join(parse_ref(want)):
                    continue
            if any(f == "dangling=true" for f in args.filter) and tag is not None:
                continue
            rows.append(_ImageRow(img, tag, trunc=not args.no_trunc))
    if args.quiet:
        seen = []
        for r in rows:
            if r.ID not in seen:
                seen.append(r.ID)
                print(r.ID)
        return 0
    sys.stdout.write(render_format(args.format, IMAGES_TABLE, rows, IMAGES_HEADERS))
    return 0


def add_rmi(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")


def cmd_rmi(paths: Paths, args: Namespace) -> int:
    store = Store(paths)

    def in_use(image_id: str) -> list[str]:
        return [c["ID"] for c in store.all() if c.get("Image") == image_id]

    status = 0
    for ref in args.images:
        try:
            for line in _store(paths).remove(ref, args.force, in_use):
                print(line)
        except BoxError as e:
            print(f"box: {e}", file=sys.stderr)
            status = 1
    return status


def add_tag(p: FlagParser) -> None:
    p.add_argument("source")
    p.add_argument("target")


def cmd_tag(paths: Paths, args: Namespace) -> int:
    _store(paths).tag(args.source, args.target)
    return 0
