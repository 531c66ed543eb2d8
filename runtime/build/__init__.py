"""``box build``: images from a Dockerfile, with Docker's cache rules.

One module per idea: ``ignore`` (.dockerignore matching), ``context`` (the build
context: sources, wildcards, checksums), ``words`` (variable substitution and quote
removal), ``instructions`` (the Dockerfile parsed by BuildKit's own parser, the
``dockerfile`` package, into stages of checked instructions), ``state`` (the image
config a stage grows), ``cache`` (step reuse), ``layer`` (an overlayfs upper dir as an
OCI layer), ``mounts`` (scratch dirs, read-only overlays, the private mount namespace),
``run_step`` (RUN in a container made by the runtime), ``copy_step`` (COPY/ADD into an
overlay), ``copy_flags`` (--exclude, --parents, --link), ``progress`` (--progress plain:
BuildKit's plain shape), ``steps_io`` (RUN and COPY/ADD planned from their flags and keyed for the
cache), ``executor`` (one handler per instruction), ``builder`` (stages, output).

Checklist, a new instruction: its flags in ``instructions.FLAGS``, its argument checks
in ``instructions._check``, a handler in ``executor.HANDLERS`` that goes through
``Builder.step`` (the cache), a test in tests/runtime/test_build.py.
"""
