"""Layer extraction against hostile archives (one per rule) and well-formed ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from runtime.images.extract import extract_layer
from runtime.images.layerfs import OPAQUE_XATTR, UnsafeArchive

MTIME = 1_600_000_000


def entry(kind: str, name: str, *, data: bytes = b"", link: str = "", mode: int | None = None,
          uid: int = 0, gid: int = 0, dev: tuple[int, int] = (0, 0)
          ) -> tuple[tarfile.TarInfo, bytes]:
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
             "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
             "fifo": tarfile.FIFOTYPE}
    ti = tarfile.TarInfo(name)
    ti.type = types[kind]
    ti.size = len(data) if kind == "file" else 0
    ti.linkname = link
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid = uid, gid
    ti.mtime = MTIME
    ti.devmajor, ti.devminor = dev
    return ti, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything about a tree that an escaping write could change."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames + ["."]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            body = os.readlink(p) if stat.S_ISLNK(st.st_mode) else (
                p.read_bytes() if stat.S_ISREG(st.st_mode) else b"")
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_nlink,
                                             st.st_mtime_ns, body)
    return out


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "victim").write_text("original\n")
    layers = tmp_path / "layers"
    layers.mkdir()
    return {"sentinel": sentinel, "layers": layers, "dest": layers / "L"}


def hostile_cases(sentinel: Path) -> list[tuple[str, bytes, str, str]]:
    """(case, archive, entry the error must name, words the reason must contain)."""
    s = str(sentinel)
    return [
        ("absolute", make_tar(entry("file", f"{s}/pwned", data=b"x")), f"{s}/pwned", "absolute"),
        ("dotdot", make_tar(entry("file", "../../sentinel/pwned", data=b"x")),
         "../../sentinel/pwned", "'..'"),
        ("dotdot-inner", make_tar(entry("dir", "ok"), entry("file", "ok/../../../sentinel/pwned",
                                                            data=b"x")),
         "ok/../../../sentinel/pwned", "'..'"),
        ("symlinked-parent", make_tar(entry("sym", "a", link=s),
                                      entry("file", "a/pwned", data=b"x")),
         "a/pwned", "parent 'a' is a symlink"),
        ("symlinked-parent-deep", make_tar(entry("dir", "d"), entry("sym", "d/a", link="../.."),
                                           entry("dir", "d/a/sentinel")),
         "d/a/sentinel", "parent 'd/a' is a symlink"),
        ("relative-symlink-parent", make_tar(entry("dir", "real"), entry("sym", "a", link="real"),
                                             entry("file", "a/f", data=b"x")),
         "a/f", "symlink"),
        ("hardlink-etc-passwd", make_tar(entry("hard", "pw", link="/etc/passwd")),
         "pw", "absolute hard link target"),
        ("hardlink-dotdot", make_tar(entry("hard", "x", link="../../sentinel/victim")),
         "x", "'..'"),
        ("hardlink-to-symlink", make_tar(entry("sym", "s", link=f"{s}/victim"),
                                         entry("hard", "h", link="s")),
         "h", "not an earlier regular file"),
        ("hardlink-to-later-file", make_tar(entry("hard", "h", link="f"),
                                            entry("file", "f", data=b"x")),
         "h", "not an earlier regular file"),
        ("symlink-dot", make_tar(entry("sym", ".", link=s)), ".", "layer root"),
        ("symlink-dot-slash", make_tar(entry("sym", "./", link=s)), "./", "layer root"),
        ("symlink-slash", make_tar(entry("sym", "/", link=s)), "/", "absolute"),
        ("symlink-empty", make_tar(entry("sym", "", link=s)), "", "layer root"),
        ("parent-is-file", make_tar(entry("file", "f", data=b"x"),
                                    entry("file", "f/g", data=b"y")),
         "f/g", "parent 'f' is a file"),
        ("whiteout-dotdot", make_tar(entry("file", ".wh..."), ), ".wh...", "whiteout"),
    ]


@pytest.mark.parametrize("case", [c[0] for c in hostile_cases(Path("/x"))])
def test_hostile_archive_is_refused_and_leaves_nothing(env: dict[str, Path], case: str) -> None:
    sentinel, layers, dest = env["sentinel"], env["layers"], env["dest"]
    _, archive, bad_entry, reason = next(c for c in hostile_cases(sentinel) if c[0] == case)
    before = snapshot(sentinel)
    passwd = os.stat("/etc/passwd")
    with pytest.raises(UnsafeArchive) as err:
        extract_layer(io.BytesIO(archive), dest)
    msg = str(err.value)
    assert "\n" not in msg
    assert err.value.entry == bad_entry and repr(bad_entry) in msg
    assert reason in msg
    assert snapshot(sentinel) == before
    assert os.stat("/etc/passwd").st_nlink == passwd.st_nlink
    assert os.listdir(layers) == []  # no dest, no temp dir


def test_decompression_bomb_stops_at_the_cap(env: dict[str, Path]) -> None:
    bomb = gzip.compress(make_tar(entry("file", "small", data=b"ok"),
                                  entry("file", "big", data=bytes(4 << 20))))
    assert len(bomb) < 16 << 10
    with pytest.raises(UnsafeArchive) as err:
        extract_layer(io.BytesIO(bomb), env["dest"], max_bytes=1 << 20)
    assert err.value.entry == "big" and "exceeds 1048576 bytes" in str(err.value)
    assert os.listdir(env["layers"]) == []


def test_many_small_entries_also_hit_the_cap(env: dict[str, Path]) -> None:
    archive = make_tar(*(entry("file", f"f{i}", data=bytes(4096)) for i in range(300)))
    with pytest.raises(UnsafeArchive, match="exceeds"):
        extract_layer(io.BytesIO(archive), env["dest"], max_bytes=512 << 10)
    assert os.listdir(env["layers"]) == []


def test_not_a_tar_names_the_archive(env: dict[str, Path]) -> None:
    with pytest.raises(UnsafeArchive, match="not a valid tar"):
        extract_layer(io.BytesIO(b"hello, not a tarball" * 50), env["dest"])
    with pytest.raises(UnsafeArchive, match="not a valid tar"):
        extract_layer(io.BytesIO(gzip.compress(b"x" * 1000)[:40]), env["dest"])
    assert os.listdir(env["layers"]) == []


def test_device_nodes_are_dropped_fifos_kept(env: dict[str, Path]) -> None:
    archive = make_tar(entry("dir", "dev"), entry("chr", "dev/null", dev=(1, 3)),
                       entry("blk", "dev/sda", dev=(8, 0)), entry("fifo", "dev/pipe"))
    extract_layer(io.BytesIO(archive), env["dest"])
    dev = env["dest"] / "dev"
    assert sorted(os.listdir(dev)) == ["pipe"]
    assert stat.S_ISFIFO(os.lstat(dev / "pipe").st_mode)


GOOD = (
    entry("dir", "."),
    entry("dir", "bin"),
    entry("file", "bin/tool", data=b"#!/bin/sh\necho hi\n", mode=0o4755),
    entry("hard", "bin/tool2", link="bin/tool"),
    entry("dir", "shared", mode=0o2775, uid=1000, gid=1000),
    entry("file", "shared/owned", data=b"mine", mode=0o640, uid=1000, gid=1000),
    entry("sym", "etc-passwd", link="/etc/passwd"),
    entry("sym", "up", link="../../../.."),
    entry("file", "implied/parent/file", data=b"deep"),
    entry("dir", "locked", mode=0o000),
    entry("file", "locked/inside", data=b"z"),
)


@pytest.mark.parametrize("compress", ["plain", "gzip", "xz"])
def test_good_archive_is_extracted_faithfully(env: dict[str, Path], compress: str) -> None:
    plain = make_tar(*GOOD)
    data = {"plain": plain, "gzip": gzip.compress(plain), "xz": lzma.compress(plain)}[compress]
    passwd_before = Path("/etc/passwd").read_bytes()
    got = extract_layer(io.BytesIO(data), env["dest"])
    root = env["dest"]
    assert got.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert got.size == len(b"#!/bin/sh\necho hi\n") + 4 + 4 + 1
    assert [p for p in os.listdir(env["layers"])] == ["L"]

    tool = os.lstat(root / "bin/tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755  # setuid kept
    assert tool.st_mtime_ns == MTIME * 10**9
    assert os.lstat(root / "bin/tool2").st_ino == tool.st_ino
    shared = os.lstat(root / "shared")
    assert stat.S_IMODE(shared.st_mode) == 0o2775 and (shared.st_uid, shared.st_gid) == (1000, 1000)
    assert shared.st_mtime_ns == MTIME * 10**9  # set after its children were written
    owned = os.lstat(root / "shared/owned")
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (1000, 1000, 0o640)
    # symlinks pointing outside exist AS symlinks; nothing was written through them
    assert os.readlink(root / "etc-passwd") == "/etc/passwd"
    assert os.readlink(root / "up") == "../../../.."
    assert os.lstat(root / "etc-passwd").st_mtime_ns == MTIME * 10**9
    assert Path("/etc/passwd").read_bytes() == passwd_before
    implied = os.lstat(root / "implied")
    assert stat.S_IMODE(implied.st_mode) == 0o755 and implied.st_uid == 0
    assert (root / "implied/parent/file").read_bytes() == b"deep"
    assert stat.S_IMODE(os.lstat(root / "locked").st_mode) == 0o000
    assert (root / "locked/inside").read_bytes() == b"z"
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o755


def test_later_entries_replace_symlinks_without_following_them(env: dict[str, Path]) -> None:
    s = env["sentinel"]
    before = snapshot(s)
    archive = make_tar(
        entry("sym", "out", link=str(s / "victim")),
        entry("file", "out", data=b"replaced"),
        entry("sym", "outdir", link=str(s)),
        entry("dir", "outdir"),
        entry("file", "outdir/victim", data=b"inside"),
        entry("file", "gone/x", data=b"1"),
        entry("sym", "gone", link=str(s)),  # a dir replaced by a symlink...
        entry("sym", "gone2", link="gone"),
    )
    extract_layer(io.BytesIO(archive), env["dest"])
    root = env["dest"]
    assert (root / "out").read_bytes() == b"replaced" and not (root / "out").is_symlink()
    assert not (root / "outdir").is_symlink()
    assert (root / "outdir/victim").read_bytes() == b"inside"
    assert os.readlink(root / "gone") == str(s)
    assert snapshot(s) == before


def test_dir_replaced_by_symlink_then_hardlink_into_it_is_refused(env: dict[str, Path]) -> None:
    archive = make_tar(
        entry("file", "d/f", data=b"1"),
        entry("sym", "d", link=str(env["sentinel"])),
        entry("hard", "h", link="d/f"),
    )
    with pytest.raises(UnsafeArchive) as err:
        extract_layer(io.BytesIO(archive), env["dest"])
    assert err.value.entry == "h"
    assert os.listdir(env["layers"]) == []


def test_whiteouts_become_overlayfs_whiteouts(env: dict[str, Path]) -> None:
    archive = make_tar(
        entry("dir", "etc"),
        entry("file", "etc/.wh.motd"),
        entry("dir", "var"),
        entry("file", "var/.wh..wh..opq"),
        entry("file", "var/new", data=b"n"),
        entry("chr", "already", dev=(0, 0)),
        entry("file", ".wh..wh.plnk"),
    )
    extract_layer(io.BytesIO(archive), env["dest"])
    root = env["dest"]
    for rel in ("etc/motd", "already"):
        st = os.lstat(root / rel)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert not (root / "etc/.wh.motd").exists()
    assert os.getxattr(root / "var", OPAQUE_XATTR, follow_symlinks=False) == b"y"
    assert sorted(os.listdir(root / "var")) == ["new"]
    assert sorted(os.listdir(root)) == ["already", "etc", "var"]


def test_zstd_is_decoded_or_refused_clearly(env: dict[str, Path], tmp_path: Path) -> None:
    plain = make_tar(entry("file", "hello", data=b"zstd"))
    packed = subprocess.run(["zstd", "-q", "-c"], input=plain, capture_output=True,
                            check=True).stdout
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(UnsafeArchive, match="zstandard module is not installed"):
            extract_layer(io.BytesIO(packed), env["dest"])
        assert os.listdir(env["layers"]) == []
    else:
        got = extract_layer(io.BytesIO(packed), env["dest"])
        assert got.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
        assert (env["dest"] / "hello").read_bytes() == b"zstd"
