"""A file's identity: (device, inode) plus a digest of its first line.

An inode number is reused as soon as a file is deleted (rotation with ``max-file=1`` does
it every time), so (dev, ino) alone would resume a new file at the old file's offset. The
first line of a json-file or CRI log holds its timestamp, so two files share it only if
they are the same file, or one is a copy (copytruncate, gzip) of the other: exactly what
lets a ``.gz`` rotation be recognised as an already-read file. The first line is written
by one write, so the digest never changes once it exists (it is part of record ids).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

FP_BYTES = 1024  # at most this much of the head is hashed (Filebeat's default length)


def digest(head: bytes) -> str:
    """``"<len hex>:<blake2b-64 hex>"`` of ``head``."""
    return f"{len(head):x}:" + hashlib.blake2b(head, digest_size=8).hexdigest()


def head_fingerprint(head: bytes) -> str | None:
    """The fingerprint of a file starting with ``head`` (its first FP_BYTES or fewer):
    the digest of its first line (at most FP_BYTES); None while there is no whole line."""
    nl = head.find(b"\n", 0, FP_BYTES)
    if nl >= 0:
        return digest(head[:nl + 1])
    if len(head) >= FP_BYTES:
        return digest(head[:FP_BYTES])
    return None


def fingerprint_fd(fd: int) -> str | None:
    """The fingerprint of the open file ``fd`` (None while it has no whole first line)."""
    return head_fingerprint(os.pread(fd, FP_BYTES, 0))


def fingerprint_length(fp: str) -> int:
    """How many head bytes ``fp`` was computed over."""
    return int(fp.partition(":")[0] or "0", 16)


def same_content(fp_known: str, head: bytes) -> bool:
    """True if a file starting with ``head`` starts with what ``fp_known`` hashed."""
    n = fingerprint_length(fp_known)
    return bool(fp_known) and len(head) >= n and digest(head[:n]) == fp_known


def gzip_head(path: str, n: int = FP_BYTES) -> bytes | None:
    """The first ``n`` decompressed bytes of a ``.gz`` file; None if it is not (yet) a
    readable gzip stream (a compressor may still be writing it)."""
    try:
        with gzip.open(path, "rb") as gz:
            return gz.read(n)
    except (OSError, EOFError, zlib.error):
        return None
