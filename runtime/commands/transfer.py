"""``box load``, ``save``, ``export``, ``pull``, ``push``, ``login``, ``logout``."""

from __future__ import annotations

import contextlib
import os
import sys

from formats.atomicfile import open_atomic
from runtime.errors import BoxError, InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths


def _store(paths: Paths):
    from runtime.images.store import ImageStore

    return ImageStore(paths.root)


def _progress(quiet: bool):
    from runtime.images.progress import Progress

    return Progress(sys.stdout, enabled=False if quiet else None)


@contextlib.contextmanager
def _output(path: str | None, what: str):
    """A binary stream for ``-o FILE`` (written beside it, renamed when whole) or stdout."""
    if not path:
        if sys.stdout.isatty():
            raise InvalidArgument(f"cowardly refusing to save to a terminal. Use the -o flag "
                                  f"or redirect ({what})")
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(open_atomic(path, 0o666))
        except OSError as e:
            raise BoxError(f"failed to save {what}: open {path}: "
                           f"{(e.strerror or str(e)).lower()}") from None
        yield f


def add_load(p: FlagParser) -> None:
    p.add_argument("-i", "--input")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")


def cmd_load(paths: Paths, args: Namespace) -> int:
    from runtime.images.load import load, open_source

    if not args.input and sys.stdin.isatty():
        raise InvalidArgument("requested load from stdin, but stdin is empty")
    store = _store(paths)
    src = open_source(args.input or "-", os.path.join(store.dir, "tmp"))
    try:
        lines = load(store, src, _progress(args.quiet))
        for line in lines:
            print(line)
    finally:
        src.close()
    from runtime.commands.images import image_event

    ids: list[str] = []
    for line in lines:  # "Loaded image: REF" or "Loaded image ID: ID"
        ref = line.split(": ", 1)[1]
        with contextlib.suppress(BoxError):
            image_id = ref if line.startswith("Loaded image ID") else store.resolve(ref).id
            if image_id not in ids:
                ids.append(image_id)
    for image_id in ids:
        image_event(paths, store, image_id, "load", image_id)
    return 0


def add_save(p: FlagParser) -> None:
    p.add_argument("-o", "--output")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_save(paths: Paths, args: Namespace) -> int:
    from runtime.images.save import save

    store = _store(paths)
    with _output(args.output, "images") as out:
        save(store, args.images, out)
    from runtime.commands.images import image_event

    ids = dict.fromkeys(store.resolve(ref).id for ref in args.images)
    for image_id in ids:  # moby's tarexport: LogImageEvent(id, id, save) per image
        image_event(paths, store, image_id, "save", image_id)
    return 0


def add_export(p: FlagParser) -> None:
    p.add_argument("-o", "--output")
    p.add_argument("container")


def cmd_export(paths: Paths, args: Namespace) -> int:
    from runtime.images.export import export_container
    from runtime.state import Store

    store = Store(paths)
    cfg = store.load(store.resolve(args.container))
    with _output(args.output, "container") as out:
        out.flush()
        code = export_container(paths, cfg, out.fileno())
    if code:
        raise BoxError(f"export of {args.container} failed (exit {code})")
    from runtime.journal import container_event

    container_event(paths.root, cfg, "export")
    return 0


def _add_registry_flags(p: FlagParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--insecure-registry", action="append", default=[])


def add_pull(p: FlagParser) -> None:
    _add_registry_flags(p)
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")


def cmd_pull(paths: Paths, args: Namespace) -> int:
    from runtime.images.pull import pull

    progress = _progress(args.quiet)
    if args.quiet:  # docker -q: only the reference
        progress.message = lambda text: None
    store = _store(paths)
    ref = pull(store, args.image, args.insecure_registry, progress)
    print(ref)
    from runtime.commands.images import image_event

    # moby: a pull is named by the reference pulled, its name without the tag
    name = ref.split("@", 1)[0].rsplit(":", 1)[0] if "@" in ref or ":" in ref.rsplit("/", 1)[-1] \
        else ref
    image_event(paths, store, ref, "pull", name)
    return 0


def add_push(p: FlagParser) -> None:
    _add_registry_flags(p)
    p.add_argument("image", metavar="NAME[:TAG]")


def cmd_push(paths: Paths, args: Namespace) -> int:
    from runtime.images.push import DEFAULT_CHUNK, push

    chunk = int(os.environ.get("BOX_UPLOAD_CHUNK_SIZE") or DEFAULT_CHUNK)
    progress = _progress(args.quiet)
    if args.quiet:
        progress.message = lambda text: None
    store = _store(paths)
    digest = push(store, args.image, args.insecure_registry, progress, chunk)
    if args.quiet:
        print(digest)
    from runtime.commands.images import image_event
    from runtime.images.reference import parse_ref

    name, tag = parse_ref(args.image)
    image_event(paths, store, f"{name}:{tag}", "push", name)
    return 0


def add_login(p: FlagParser) -> None:
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--insecure-registry", action="append", default=[])
    p.add_argument("server", nargs="?")


def cmd_login(paths: Paths, args: Namespace) -> int:
    from runtime.images.credentials import Credentials
    from runtime.images.registry import Client, Unauthorized

    server = (args.server or "docker.io").removeprefix("https://").removeprefix("http://")
    server = server.rstrip("/")
    password = args.password
    if args.password_stdin:
        if args.password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not args.username:
            raise InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
    if not args.username or not password:
        raise InvalidArgument("box login needs --username and a password "
                              "(--password-stdin or -p); there is no interactive prompt")
    client = Client(server, (args.username, password), args.insecure_registry)
    try:
        client.ping()
    except Unauthorized:
        raise BoxError(f"Error response from registry {server}: login attempt failed: "
                       "unauthorized: incorrect username or password") from None
    creds = Credentials()
    creds.store(server, args.username, password)
    print(f"WARNING! Your password will be stored unencrypted in {creds.path}.",
          file=sys.stderr)
    print("Login Succeeded")
    return 0


def add_logout(p: FlagParser) -> None:
    p.add_argument("server", nargs="?")


def cmd_logout(paths: Paths, args: Namespace) -> int:
    from runtime.images.credentials import Credentials

    server = (args.server or "docker.io").removeprefix("https://").removeprefix("http://")
    server = server.rstrip("/")
    if Credentials().erase(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0
