"""``box build``: an image from a Dockerfile (runtime/build/)."""

from __future__ import annotations

from runtime.errors import InvalidArgument
from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths


def add_build(p: FlagParser) -> None:
    a = p.add_argument
    a("-t", "--tag", action="append", default=[])
    a("-f", "--file")
    a("--build-arg", action="append", default=[])
    a("--target")
    a("--no-cache", action="store_true")
    a("--label", action="append", default=[], help="Set metadata for an image")
    a("-q", "--quiet", action="store_true",
      help="Suppress the build output and print image ID on success")
    a("--progress", default="auto",
      help="auto (default): docker's classic builder output (Step N/M, as with "
           "DOCKER_BUILDKIT=0) on stdout; plain: BuildKit's plain progress (#N lines) on "
           "stderr; quiet: as -q")
    a("--platform")
    a("-m", "--memory")
    a("--cpus")
    a("--network")
    a("context")


def _pairs(values: list[str], flag: str, from_env: bool) -> dict[str, str]:
    import os

    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f'invalid argument "{item}" for "{flag}" flag')
        if not eq:
            if not from_env:
                value = ""
            elif key in os.environ:  # docker: --build-arg NAME takes the caller's value
                value = os.environ[key]
            else:
                continue
        out[key] = value
    return out


def cmd_build(paths: Paths, args: Namespace) -> int:
    from runtime.build.builder import Builder, BuildOptions
    from runtime.build.run_step import Limits
    from runtime.build.state import host_platform
    from runtime.images.reference import parse_ref

    if args.progress not in ("auto", "plain", "quiet"):
        raise InvalidArgument(f'invalid argument "{args.progress}" for "--progress" flag: '
                              "auto, plain or quiet")
    if args.platform and args.platform != host_platform():
        raise InvalidArgument(f"--platform {args.platform}: only this host's "
                              f"({host_platform()}) can be built")
    if args.network not in (None, "default", "none", "host", "bridge"):
        raise InvalidArgument(f'invalid argument "{args.network}" for "--network" flag: '
                              "none, host or bridge")
    tags = []
    for tag in args.tag:
        name, version = parse_ref(tag)
        tags.append(f"{name}:{version}")
    network = None if args.network in (None, "default") else args.network
    opts = BuildOptions(
        context=args.context, dockerfile=args.file or "", tags=tags,
        build_args=_pairs(args.build_arg, "--build-arg", True), target=args.target or "",
        no_cache=args.no_cache, labels=_pairs(args.label, "--label", False),
        quiet=args.quiet or args.progress == "quiet", progress=args.progress,
        limits=Limits(memory=args.memory, cpus=args.cpus, network=network))
    image_id = Builder(paths, opts).build()
    if opts.quiet:
        print(image_id)
        return 0
    if opts.progress == "plain":  # BuildKit's exporting vertex said it on stderr
        return 0
    print(f"Successfully built {image_id[7:19]}")
    for tag in tags:
        print(f"Successfully tagged {tag}")
    return 0
