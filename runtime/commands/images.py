"""``box import``, ``images``, ``rmi``, ``tag``: the verbs that name images (and the
image events they journal). ``history`` reads one image's layers and ``image prune``
decides what is unused: each its own module (``history``, ``image_prune``)."""

from __future__ import annotations

import re
import sys

from runtime.errors import BoxError, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths
from runtime.state import Store, report_damaged

TYPE_CHECKING = False
if TYPE_CHECKING:  # the store module is imported lazily, per verb
    from runtime.images.store import ImageStore

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGESTS = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}"
                        "\t{{.Size}}")
IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Digest": "DIGEST"}


def _store(paths: Paths):
    from runtime.images.store import ImageStore

    return ImageStore(paths.root)


def add_import(p: FlagParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", help="Set commit message for imported image")
    p.add_argument("file", metavar="file|URL|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")


def parse_changes(changes: list[str]) -> dict:
    """Dockerfile instructions ``docker import -c`` and ``docker commit -c`` accept: CMD,
    ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL."""
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
        elif inst == "VOLUME":
            targets = json.loads(rest) if rest.startswith("[") else rest.split()
            for target in targets:
                out.setdefault("Volumes", {})[target] = {}
        elif inst == "LABEL":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                out.setdefault("Labels", {})[k] = v
        else:
            raise InvalidArgument(f"{inst} is not a valid change command")
    return out


def cmd_import(paths: Paths, args: Namespace) -> int:
    changes = parse_changes(args.change)
    ref = args.reference
    if not ref:
        raise InvalidArgument("box import needs a NAME[:TAG] for the image")
    if args.file == "-":
        image_id = _store(paths).import_tarball(sys.stdin.buffer, ref, changes)
    else:
        try:
            f = open(args.file, "rb")
        except OSError as e:
            raise BoxError(f"open {args.file}: {e.strerror.lower()}") from None
        with f:
            image_id = _store(paths).import_tarball(f, ref, changes)
    print(image_id)
    image_event(paths, _store(paths), image_id, "import", image_id)  # moby: (id, id)
    return 0


class _ImageRow:
    def __init__(self, img, tag: str | None, trunc: bool, digest: str = "<none>") -> None:
        from runtime.format.human import human_size, time_ago
        from runtime.timeutil import created_ns

        repo, _, t = (tag or "<none>:<none>").rpartition(":")
        self.Repository = repo
        self.Tag = t
        self.ID = img.short_id if trunc else img.id
        created = created_ns(img.created)  # optional in OCI: "N/A" as docker shows it
        self.CreatedSince = time_ago(created) if created is not None else "N/A"
        self.CreatedAt = img.created
        self.Size = human_size(img.size)
        self.Digest = digest


def add_images(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--format")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: ``*`` and ``?`` do not cross a ``/``."""
    out = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                  for c in pattern)
    return re.compile(f"^{out}$")


def _image_filter(store, filters: list[str]):
    """A predicate (image, tag or None) -> bool for docker's ``--filter`` values."""
    from runtime.timeutil import created_ns

    want: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep and key != "label":
            raise InvalidArgument(f"bad format of filter (expected name=value): {item!r}")
        if key not in ("dangling", "label", "before", "since", "reference"):
            raise InvalidArgument(f"invalid filter {key!r}")
        want.setdefault(key, []).append(value)
    for v in want.get("dangling", []):
        if v not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
    bounds = {k: created_ns(store.resolve(want[k][-1]).created) or 0
              for k in ("before", "since") if k in want}
    refs = [_glob(p) for p in want.get("reference", [])]

    def keep(img, tag: str | None) -> bool:
        for v in want.get("dangling", []):
            if (v in ("true", "1")) != (not img.repo_tags):
                return False
        labels = img.config.get("Labels") or {}
        for lab in want.get("label", []):
            k, sep, v = lab.partition("=")
            if k not in labels or (sep and labels[k] != v):
                return False
        created = created_ns(img.created) or 0
        if "before" in bounds and not created < bounds["before"]:
            return False
        if "since" in bounds and not created > bounds["since"]:
            return False
        if refs:
            if tag is None:
                return False
            name = tag.rpartition(":")[0]
            if not any(r.match(name) or r.match(tag) for r in refs):
                return False
        return True

    return keep


def cmd_images(paths: Paths, args: Namespace) -> int:
    from runtime.format import render_format
    from runtime.images.reference import parse_ref

    store = _store(paths)
    keep = _image_filter(store, args.filter)
    rows = []
    want = None
    if args.repository:
        want = args.repository if ":" in args.repository else None
        want_repo = parse_ref(args.repository)[0]
    for img in store.list(report=report_damaged):
        digests = {d.split("@", 1)[0]: d.split("@", 1)[1] for d in img.repo_digests}
        tags: list[str | None] = list(img.repo_tags) or [None]
        if args.digests:  # an image known only by digest in a repo still gets a row there
            tagged = {t.rpartition(":")[0] for t in img.repo_tags}
            tags += [f"{repo}:<none>" for repo in digests if repo not in tagged]
            if len(tags) > 1 and tags[0] is None:
                tags.pop(0)
        for tag in tags:
            if args.repository:
                if tag is None or tag.rpartition(":")[0] != want_repo:
                    continue
                if want and tag != ":".join(parse_ref(want)):
                    continue
            if not keep(img, tag):
                continue
            digest = digests.get(tag.rpartition(":")[0], "<none>") if tag else "<none>"
            rows.append(_ImageRow(img, tag, trunc=not args.no_trunc, digest=digest))
    if args.quiet:
        seen = []
        for r in rows:
            if r.ID not in seen:
                seen.append(r.ID)
                print(r.ID)
        return 0
    table = IMAGES_TABLE_DIGESTS if args.digests else IMAGES_TABLE
    sys.stdout.write(render_format(args.format, table, rows, IMAGES_HEADERS))
    return 0


def add_rmi(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_rmi(paths: Paths, args: Namespace) -> int:
    from runtime.images.remove import remove

    store = Store(paths)

    def in_use(image_id: str) -> list[str]:
        return [c["ID"] for c in store.all() if c.get("Image") == image_id]

    status = 0
    for ref in args.images:
        try:
            images = _store(paths)
            try:
                image_id = images.resolve(ref).id
            except BoxError:
                image_id = ""
            for line in remove(images, ref, args.force, in_use):
                print(line)
                # moby's ImageDelete: untag/delete events named by the image's id
                if image_id and line.startswith("Untagged: "):
                    image_event(paths, images, image_id, "untag", image_id)
                elif image_id and line == f"Deleted: {image_id}":
                    image_event(paths, images, image_id, "delete", image_id)
        except BoxError as e:
            print(f"box: {e}", file=sys.stderr)
            status = 1
    return status


def add_tag(p: FlagParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


def cmd_tag(paths: Paths, args: Namespace) -> int:
    from runtime.images.store import parse_ref

    store = _store(paths)
    image_id = store.tag(args.source, args.target)
    name, tag = parse_ref(args.target)
    image_event(paths, store, image_id, "tag", f"{name}:{tag}")
    return 0


def image_event(paths: Paths, store: ImageStore, image_id: str, action: str, name: str) -> None:
    """moby's LogImageEvent: the image's labels and ``name``; never fails the command."""
    from runtime.journal import event

    try:
        labels = (store.resolve(image_id).config or {}).get("Labels") or {}
    except BoxError:
        labels = {}
    event(paths.root, "image", action, image_id, **{str(k): v for k, v in labels.items()},
          name=name)
