"""The image store on a real busybox rootfs: import, resolve, list, tag, rmi, sharing."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from formats.units import parse_rfc3339
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.images.layerfs import UnsafeArchive
from runtime.images.remove import remove
from runtime.images.store import ImageStore, parse_ref
from tests.support.busybox import applets, build_busybox_tar


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_tar(tmp_path_factory.mktemp("busybox") / "busybox.tar")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "root")


def no_users(image_id: str) -> list[str]:
    return []


def import_file(store: ImageStore, tar: Path, ref: str, **kw: object) -> str:
    with open(tar, "rb") as f:
        return store.import_tarball(f, ref, **kw)


def layer_entries(store: ImageStore) -> list[str]:
    return sorted(os.listdir(store.layers))


def test_import_then_resolve_by_name_tag_and_id(store: ImageStore, busybox_tar: Path) -> None:
    image_id = import_file(store, busybox_tar, "busybox")
    hexid = image_id.removeprefix("sha256:")
    blob = (Path(store.blobs) / hexid).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == hexid  # content-addressed, as in Docker
    cfg = json.loads(blob)
    diff_id = "sha256:" + hashlib.sha256(busybox_tar.read_bytes()).hexdigest()
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert cfg["os"] == "linux" and cfg["config"]["Cmd"] == []
    assert json.loads(Path(store.repos_file).read_text()) == {
        "Repositories": {"busybox": {"busybox:latest": image_id}}}

    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox", image_id, hexid,
                hexid[:12], "sha256:" + hexid[:12]):
        assert store.resolve(ref).id == image_id, ref
    img = store.resolve("busybox")
    assert img.repo_tags == ["busybox:latest"] and img.short_id == hexid[:12]
    assert img.config["Cmd"] == [] and img.config["Env"] == [] and img.config["WorkingDir"] == ""
    assert parse_rfc3339(img.created) > 0
    assert img.layer_dirs == [str(Path(store.layers) / diff_id.removeprefix("sha256:"))]
    assert img.size == os.path.getsize("/bin/busybox") + len(
        (Path(img.layer_dirs[0]) / "etc/passwd").read_bytes()
        + (Path(img.layer_dirs[0]) / "etc/group").read_bytes()
    )

    root = Path(img.layer_dirs[0])
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert all((root / a).is_symlink() or a == "bin/busybox" for a in applets())
    assert oct(os.lstat(root / "tmp").st_mode & 0o7777) == oct(0o1777)
    assert os.lstat(root / "home/app").st_uid == 1000
    out = subprocess.run(["chroot", str(root), "/bin/sh", "-c", "id app; echo ok"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "uid=1000(app) gid=1000(app) groups=1000(app)\nok\n"


def test_changes_set_the_config(store: ImageStore, busybox_tar: Path) -> None:
    image_id = import_file(store, busybox_tar, "web:v1", message="from a test",
                           changes={"Cmd": ["/bin/httpd", "-f"], "Env": ["A=1"],
                                    "WorkingDir": "/srv"})
    blob = json.loads((Path(store.blobs) / image_id[7:]).read_bytes())
    assert blob["history"][0]["comment"] == "from a test"
    img = store.resolve("web:v1")
    assert img.os == "linux" and img.architecture == blob["architecture"] != ""
    cfg = img.config
    assert (cfg["Cmd"], cfg["Env"], cfg["WorkingDir"]) == (["/bin/httpd", "-f"], ["A=1"], "/srv")
    with pytest.raises(InvalidArgument, match="'Bogus'"):
        import_file(store, busybox_tar, "web:v2", changes={"Bogus": 1})
    with pytest.raises(InvalidArgument, match="Cmd"):
        import_file(store, busybox_tar, "web:v2", changes={"Cmd": "/bin/sh"})


@pytest.mark.parametrize("bad", ["UPPER", "a::b", "", "a:b:c", "x@sha256:00", "-lead", "a/:t",
                                 "a:" + "t" * 200, "0" * 64])
def test_invalid_refs_are_refused_before_any_work(store: ImageStore, busybox_tar: Path,
                                                  bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        import_file(store, busybox_tar, bad)
    assert repr(bad) in str(err.value) and "\n" not in str(err.value)
    assert not Path(store.layers).exists() or layer_entries(store) == []


def test_parse_ref_normalises() -> None:
    assert parse_ref("busybox") == ("busybox", "latest")
    assert parse_ref("library/busybox:1.36") == ("busybox", "1.36")
    assert parse_ref("localhost:5000/team/app") == ("localhost:5000/team/app", "latest")
    assert parse_ref("localhost:5000/team/app:v2") == ("localhost:5000/team/app", "v2")


def test_missing_images_give_dockers_messages(store: ImageStore, busybox_tar: Path) -> None:
    with pytest.raises(NotFound, match=r"^Unable to find image 'nope:latest' locally$"):
        store.resolve("nope")
    import_file(store, busybox_tar, "busybox")
    with pytest.raises(NotFound, match=r"^Unable to find image 'busybox:other' locally$"):
        store.resolve("busybox:other")
    with pytest.raises(NotFound, match=r"^Error: No such image: nope$"):
        remove(store, "nope", force=False, in_use=no_users)
    with pytest.raises(NotFound, match=r"^Error: No such image: nope$"):
        store.tag("nope", "x")


def test_list_and_tag(store: ImageStore, busybox_tar: Path) -> None:
    first = import_file(store, busybox_tar, "busybox")
    second = import_file(store, busybox_tar, "other:1")
    assert [i.id for i in store.list()] == [second, first]  # newest first
    store.tag("busybox", "mine:v1")
    store.tag(second[7:19], "busybox")  # moving the tag leaves `first` dangling
    images = {i.id: i for i in store.list()}
    assert images[first].repo_tags == ["mine:v1"]
    assert images[second].repo_tags == ["busybox:latest", "other:1"]
    store.tag("mine:v1", "mine:v2")
    remove(store, "mine:v1", force=False, in_use=no_users)
    remove(store, "mine:v2", force=False, in_use=no_users)
    assert [i.repo_tags for i in store.list() if i.id == first] == []
    with pytest.raises(InvalidArgument):
        store.tag("busybox", "Bad:Ref")


def test_rmi_refuses_an_image_a_container_uses(store: ImageStore, busybox_tar: Path) -> None:
    image_id = import_file(store, busybox_tar, "busybox")
    cid = "abc123def4567890" * 4

    def used(i: str) -> list[str]:
        return [cid] if i == image_id else []

    with pytest.raises(Conflict) as err:
        remove(store, "busybox", force=False, in_use=used)
    assert str(err.value) == (
        'conflict: unable to remove repository reference "busybox" (must force) - container '
        f"abc123def456 is using its referenced image {image_id[7:19]}")
    with pytest.raises(Conflict, match="being used by container abc123def456"):
        remove(store, image_id[7:19], force=False, in_use=used)
    assert store.resolve("busybox").id == image_id

    # a second tag can go while the image is in use; the last one cannot
    store.tag("busybox", "busybox:two")
    assert remove(store, "busybox:two", force=False, in_use=used) == ["Untagged: busybox:two"]
    # forced: untagged, but the image and its layer stay for the container
    assert remove(store, "busybox", force=True, in_use=used) == ["Untagged: busybox:latest"]
    assert store.resolve(image_id).repo_tags == []
    assert Path(store.resolve(image_id).layer_dirs[0]).is_dir()
    # once the container is gone the dangling image is removed by ID
    lines = remove(store, image_id[7:19], force=False, in_use=no_users)
    assert lines[0] == f"Deleted: {image_id}"
    assert store.list() == []


def test_rmi_by_id_with_several_tags_needs_force(store: ImageStore, busybox_tar: Path) -> None:
    image_id = import_file(store, busybox_tar, "busybox")
    store.tag("busybox", "again:1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        remove(store, image_id, force=False, in_use=no_users)
    lines = remove(store, image_id, force=True, in_use=no_users)
    assert lines[:3] == ["Untagged: again:1", "Untagged: busybox:latest", f"Deleted: {image_id}"]
    assert store.list() == [] and layer_entries(store) == []


def test_shared_layer_lives_until_the_last_image(store: ImageStore, busybox_tar: Path) -> None:
    a = import_file(store, busybox_tar, "a")
    b = import_file(store, busybox_tar, "b")
    assert a != b  # different configs (created) over one layer
    diff_hex = hashlib.sha256(busybox_tar.read_bytes()).hexdigest()
    assert layer_entries(store) == [diff_hex, f"{diff_hex}.json", f"{diff_hex}.tar-split.gz"]
    assert store.resolve("a").layer_dirs == store.resolve("b").layer_dirs

    assert remove(store, "a", force=False, in_use=no_users) == ["Untagged: a:latest",
                                                               f"Deleted: {a}"]
    assert (Path(store.layers) / diff_hex / "bin/busybox").is_file()
    assert remove(store, "b", force=False, in_use=no_users) == [
        "Untagged: b:latest", f"Deleted: {b}", f"Deleted: sha256:{diff_hex}"]
    assert layer_entries(store) == [] and os.listdir(store.blobs) == []
    assert json.loads(Path(store.repos_file).read_text()) == {"Repositories": {}}


def test_unsafe_import_leaves_no_trace(store: ImageStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("../escape")
        tf.addfile(ti, io.BytesIO(b""))
    buf.seek(0)
    with pytest.raises(UnsafeArchive, match="'../escape'"):
        store.import_tarball(buf, "evil")
    assert layer_entries(store) == [] and not Path(store.repos_file).exists()
    assert not Path(store.blobs).exists() or os.listdir(store.blobs) == []


def _import_in_child(root: str, tar: str, ref: str, barrier: object, out: object) -> None:
    barrier.wait()
    with open(tar, "rb") as f:
        out.put(ImageStore(Path(root)).import_tarball(f, ref))


def test_concurrent_imports_share_one_layer(tmp_path: Path, busybox_tar: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    root = tmp_path / "root"
    procs = [ctx.Process(target=_import_in_child, args=(str(root), str(busybox_tar), ref,
                                                         barrier, out))
             for ref in ("one", "two")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ids = {out.get(timeout=5), out.get(timeout=5)}
    store = ImageStore(root)
    diff_hex = hashlib.sha256(busybox_tar.read_bytes()).hexdigest()
    # no staging dirs left
    assert layer_entries(store) == [diff_hex, f"{diff_hex}.json", f"{diff_hex}.tar-split.gz"]
    assert {store.resolve("one").id, store.resolve("two").id} == ids
    assert sorted(t for i in store.list() for t in i.repo_tags) == ["one:latest", "two:latest"]
