"""``box build``: images from a Dockerfile, with Docker's cache rules.

One module per idea: ``ignore`` (.dockerignore matching), ``context`` (the build
context: sources, wildcards, checksums), ``words`` (variable substitution and quote
removal), ``instructions`` (the Dockerfile parsed by BuildKit's own parser, the
``dockerfile`` package, into stages of checked instructions), ``state`` (the image
config a stage grows), ``cache`` (step reuse), ``layer`` (an overlayfs upper dir as an
OCI layer), ``run_step`` (RUN in a container made by the runtime), ``copy_step``
(COPY/ADD), ``executor`` (one handler per instruction), ``builder`` (stages, output).
"""
