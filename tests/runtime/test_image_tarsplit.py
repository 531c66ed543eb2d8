"""Tar-split: the exact layer tarball is rebuilt from the extracted layer (GNU and PAX
long names, hard links, whiteouts, big files, odd sizes), never through a symlink the
archive planted; and the per-layer progress lines."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from runtime.images.extract import extract_layer
from runtime.images.progress import Progress, bar
from runtime.images.tarsplit import LayerUnavailable, iter_tarball


def _archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        def add(name: str, data: bytes | None = None, **kw: object) -> None:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_600_000_000
            for k, v in kw.items():
                setattr(ti, k, v)
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)

        add("d", type=tarfile.DIRTYPE, mode=0o755)
        add("d/" + "long-name-" * 20, os.urandom(1000))
        add("d/big", os.urandom(3 << 20) + b"tail")
        add("d/empty", b"")
        add("d/hard", type=tarfile.LNKTYPE, linkname="d/big")
        add("d/.wh.gone", b"")
        add("d/sym", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        for i in range(30):
            add(f"d/small{i}", os.urandom(i * 37))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tarball_is_rebuilt_byte_for_byte(tmp_path: Path, fmt: int) -> None:
    raw = _archive(fmt)
    got = extract_layer(io.BytesIO(raw), tmp_path / "L", split_path=str(tmp_path / "L.split"))
    assert got.tar_size == len(raw)
    rebuilt = b"".join(iter_tarball(str(tmp_path / "L"), str(tmp_path / "L.split")))
    assert rebuilt == raw
    assert "sha256:" + hashlib.sha256(rebuilt).hexdigest() == got.diff_id
    assert os.path.getsize(tmp_path / "L.split") < len(raw) // 50  # headers only


def test_rebuild_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("secret")
        ti.size = 5
        tf.addfile(ti, io.BytesIO(b"first"))
        link = tarfile.TarInfo("secret")  # a later entry replaces it with a link out
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(link)
    extract_layer(io.BytesIO(buf.getvalue()), tmp_path / "L", split_path=str(tmp_path / "s"))
    with pytest.raises(LayerUnavailable, match="'secret'"):
        b"".join(iter_tarball(str(tmp_path / "L"), str(tmp_path / "s")))


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "L").mkdir()
    with pytest.raises(LayerUnavailable, match="no tar-split"):
        list(iter_tarball(str(tmp_path / "L"), str(tmp_path / "nope")))


def test_progress_lines_on_a_tty_and_silence_otherwise() -> None:
    out = io.StringIO()
    p = Progress(out, enabled=True)
    p.update("aaa", "Downloading", 0, 100)
    p.update("bbb", "Downloading", 50, 100)
    p.status("aaa", "Pull complete")
    text = out.getvalue()
    assert text.startswith("aaa: Downloading [>")
    assert "bbb: Downloading [" + "=" * 25 + ">" in text
    assert "\x1b[2A\r\x1b[2Kaaa: Pull complete\r\x1b[2B" in text  # redrawn in place
    quiet = io.StringIO()
    q = Progress(quiet)  # a StringIO is not a TTY
    q.update("aaa", "Downloading", 1, 2)
    q.message("Digest: x")
    assert quiet.getvalue() == "Digest: x\n"
    assert bar(3_400_000, 3_400_000).endswith("3.4MB/3.4MB")
