"""The writable layer's location and moby's SizeRw walk (``formats.layers``), on real
trees in a temp dir: apparent sizes, hard links once, links not followed, directories
nothing; a walk done in steps of any size ends where the whole walk does."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from formats.layers import LayerWalk, docker_mount_id, state_root, tree_size, upper_dir
from runtime.format.human import human_size_precision


def _tree(root: Path) -> int:
    """A layer with every kind of entry; returns moby's size of it."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_bytes(b"x" * 1000)
    (root / "big").write_bytes(b"y" * 123_456)
    os.link(root / "big", root / "etc" / "big-again")  # a hard link counts once
    os.symlink("/a/target/of/22/bytes", root / "link")  # the link's own length
    with open(root / "sparse", "wb") as f:  # apparent size, not blocks
        f.truncate(10_000_000)
    (root / "empty").touch()
    os.mknod(root / "whiteout", 0o600 | 0o020000, os.makedev(0, 0))
    (root / "deep" / "er" / "est").mkdir(parents=True)
    (root / "deep" / "er" / "est" / "f").write_bytes(b"z" * 7)
    return 1000 + 123_456 + len("/a/target/of/22/bytes") + 10_000_000 + 7


def test_tree_size_is_mobys_directory_size(tmp_path: Path) -> None:
    expected = _tree(tmp_path / "diff")
    assert tree_size(str(tmp_path / "diff")) == expected


def test_a_missing_layer_is_zero(tmp_path: Path) -> None:
    assert tree_size(str(tmp_path / "nope")) == 0
    assert tree_size("") == 0


@settings(max_examples=40, deadline=None)
@given(budget=st.integers(min_value=1, max_value=20))
def test_a_walk_in_steps_ends_where_the_whole_walk_does(tmp_path_factory, budget: int) -> None:
    root = tmp_path_factory.mktemp("layer") / "diff"
    expected = _tree(root)
    for i in range(30):
        (root / "deep" / f"file{i}").write_bytes(b"q" * i)
    expected += sum(range(30))
    walk = LayerWalk(str(root))
    steps = 1
    while not walk.step(budget):
        steps += 1
    assert walk.size == expected and walk.done
    assert steps > 1 or budget >= walk.entries


def test_upper_dir_of_box_and_docker_layouts(tmp_path: Path) -> None:
    box_id, docker_id = "a" * 64, "b" * 64
    (tmp_path / "overlay2" / box_id / "diff").mkdir(parents=True)
    assert upper_dir(str(tmp_path), box_id) == str(tmp_path / "overlay2" / box_id / "diff")
    mounts = tmp_path / "image" / "overlay2" / "layerdb" / "mounts" / docker_id
    mounts.mkdir(parents=True)
    (mounts / "mount-id").write_text("f00d" * 16)  # Docker writes no newline
    (tmp_path / "overlay2" / ("f00d" * 16) / "diff").mkdir(parents=True)
    assert upper_dir(str(tmp_path), docker_id) == str(tmp_path / "overlay2" / ("f00d" * 16)
                                                      / "diff")
    assert upper_dir(str(tmp_path), "c" * 64) == ""
    config = tmp_path / "containers" / box_id / "config.v2.json"
    assert state_root(str(config)) == str(tmp_path)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_a_damaged_mount_id_never_names_a_path(tmp_path_factory, text: str) -> None:
    root = tmp_path_factory.mktemp("root")
    mounts = root / "image" / "overlay2" / "layerdb" / "mounts" / "x"
    mounts.mkdir(parents=True)
    (mounts / "mount-id").write_bytes(text.encode("utf-8", "surrogatepass"))
    got = docker_mount_id(str(root), "x")
    assert "/" not in got and got not in (".", "..")
    assert got == "" or got == text.strip() and got.isascii()


def test_human_size_precision_is_go_units() -> None:
    # go-units HumanSizeWithPrecision(n, 3), as docker ps prints SIZE
    cases = {0: "0B", 2: "2B", 1000: "1kB", 1024: "1.02kB", 1_048_576: "1.05MB",
             21_500_000: "21.5MB", 999_999: "1e+03kB", 3.42e9: "3.42GB", 300_000: "300kB"}
    for n, text in cases.items():
        assert human_size_precision(n, 3) == text
