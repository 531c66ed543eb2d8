"""Images: the content-addressed store (``store``) and safe layer extraction (``extract``).

Import from the submodules; this package imports nothing, so ``box run`` (which only
resolves an image) does not pay for tarfile and the decompressors.
"""
