"""Images whose configs leave out what the OCI image spec makes optional (``created``,
``author``, ``history``, ``config`` and its keys, ``os``/``architecture``) or hold
nulls or odd values there, and an image without any layer: every image verb works over
them (images, history, inspect, tag, save, push, run, rmi, system df, image prune) and
none prints a traceback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Box
from tests.support.busybox import build_busybox_tar
from tests.support.images import diff_id, write_oci_layout
from tests.support.registry import Registry, registry

pytestmark = pytest.mark.slow  # every image verb over five layouts, a registry

# name -> (config without the rootfs key, has the busybox layer)
ODD_CONFIGS: dict[str, tuple[dict, bool]] = {
    # nothing but the rootfs: no created, author, history, config, os, architecture
    "bare": ({}, True),
    "nulls": ({"created": None, "author": None, "architecture": None, "os": None,
               "config": {"Labels": None, "Cmd": None, "Env": None, "Entrypoint": None},
               "history": None}, True),
    "empties": ({"created": "", "author": "", "architecture": "", "os": "",
                 "config": {"Labels": {}, "Cmd": [], "Env": []}, "history": []}, True),
    # history entries that say nothing, one with a created that is not a timestamp,
    # more entries than layers; a config that is not an object
    "odd-history": ({"created": "yesterday", "config": [],
                     "history": [{}, {"empty_layer": True}, {"created": "garbage"}, None]},
                    True),
    # an image without any layer (a FROM scratch image with only metadata)
    "no-layers": ({"architecture": "amd64", "os": "linux",
                   "config": {"Cmd": ["/bin/sh", "-c", "true"]}}, False),
}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("odd-images")
    layer = build_busybox_tar(d / "busybox.tar").read_bytes()
    out = {}
    for name, (config, has_layer) in ODD_CONFIGS.items():
        layers = [layer] if has_layer else []
        doc = {**config, "rootfs": {"type": "layers", "diff_ids": [diff_id(x) for x in layers]}}
        out[name] = d / name
        write_oci_layout(out[name], doc, layers, ref=f"test/{name}:v1")
    return out


@pytest.fixture
def odd_box(tmp_path: Path, make_box: Callable[[Path, Path], Box],
            layouts: dict[str, Path]) -> Box:
    box = make_box(tmp_path / "root", tmp_path / "run")
    for path in layouts.values():
        box.ok("load", "-i", str(path))
    return box


@pytest.fixture
def reg() -> Iterator[Registry]:
    with registry() as r:
        yield r


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def test_listing_shows_every_image_with_na_for_a_missing_date(odd_box: Box) -> None:
    proc = odd_box("images", "--format", "{{.Repository}} {{.CreatedSince}} {{.Size}}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = sorted(proc.stdout.splitlines())
    assert rows == sorted(f"test/{n} N/A {'0B' if n == 'no-layers' else '1.982MB'}"
                          for n in ODD_CONFIGS)
    table = odd_box("images")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + len(ODD_CONFIGS)
    for flt in ("since=test/bare:v1", "before=test/bare:v1", "label=x", "dangling=false"):
        proc = odd_box("images", "--filter", flt)
        assert proc.returncode == 0, (flt, proc.stderr)


@pytest.mark.parametrize("name", list(ODD_CONFIGS))
def test_history_inspect_tag_save(odd_box: Box, name: str, tmp_path: Path) -> None:
    ref = f"test/{name}:v1"
    hist = odd_box("history", "--format", "{{.ID}}|{{.CreatedSince}}|{{.Size}}", ref)
    assert hist.returncode == 0, hist.stderr
    rows = hist.stdout.splitlines()
    assert rows and all(r.split("|")[1] == "N/A" for r in rows)
    if name == "odd-history":  # four entries, the layer on the first that is not empty
        assert [r.split("|")[2] for r in rows] == ["0B", "0B", "0B", "1.982MB"]
    assert odd_box("history", "-q", "--no-trunc", ref).returncode == 0

    created = "yesterday" if name == "odd-history" else ""  # kept as given, shown as N/A
    view = json.loads(odd_box.ok("image", "inspect", ref))[0]
    assert view["Created"] == created and view["Author"] == "" and view["Comment"] == ""
    assert view["Os"] == "linux"
    assert view["Config"]["Labels"] == {} and view["Config"]["Cmd"] in ([], ["/bin/sh", "-c",
                                                                              "true"])
    assert odd_box.inspect(ref, "{{.Created}}|{{.Os}}|{{len .RootFS.Layers}}") == \
        f"{created}|linux|{0 if name == 'no-layers' else 1}"

    odd_box.ok("tag", ref, f"copy/{name}:v2")
    archive = tmp_path / "saved.tar"
    odd_box.ok("save", "-o", str(archive), f"copy/{name}:v2")
    image_id = odd_box.inspect(ref, "{{.Id}}")
    odd_box.ok("rmi", f"copy/{name}:v2", ref)
    assert odd_box("image", "inspect", ref).returncode == 1
    assert odd_box.ok("load", "-i", str(archive)) == f"Loaded image: copy/{name}:v2\n"
    assert odd_box.inspect(f"copy/{name}:v2", "{{.Id}}") == image_id  # the same bytes back


def test_run_without_a_command_is_moby_s_error(odd_box: Box) -> None:
    for name in ("bare", "nulls", "empties"):
        proc = odd_box("run", "--rm", "--network", "none", f"test/{name}:v1")
        assert (proc.returncode, proc.stderr) == (125, "box: no command specified\n")
        out = odd_box("run", "--rm", "--network", "none", f"test/{name}:v1", "echo", "ran")
        assert (out.returncode, out.stdout) == (0, "ran\n"), out.stderr
    # a config that is not an object counts as none: the command must come from the flags
    assert odd_box.ok("run", "--rm", "--network", "none", "test/odd-history:v1",
                      "echo", "ok") == "ok\n"


def test_run_an_image_without_layers(odd_box: Box) -> None:
    """Nothing to execute in an empty root: docker's 127, one line, and the container
    is created over an empty lower directory (overlayfs needs one)."""
    proc = odd_box("run", "--name", "scratch", "--network", "none", "test/no-layers:v1")
    assert proc.returncode == 127
    assert proc.stderr.splitlines() == [
        'box: exec: "/bin/sh": stat /bin/sh: no such file or directory']
    assert odd_box.ok("ps", "-a", "--format", "{{.Names}} {{.Image}}") == \
        "scratch test/no-layers:v1\n"
    odd_box.ok("rm", "scratch")


def test_system_df_and_prune(odd_box: Box) -> None:
    df = odd_box("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
    assert df.returncode == 0 and df.stderr == ""
    assert f"Images {len(ODD_CONFIGS)}" in df.stdout.splitlines()
    out = odd_box("image", "prune", "-a", "-f", "--filter", "label=keep")
    assert out.returncode == 0 and "Total reclaimed space: 0B" in out.stdout, out
    # no date counts as the oldest: `until` prunes them all
    out = odd_box("image", "prune", "-a", "-f", "--filter", "until=1h")
    no_traceback(out)
    assert out.returncode == 0 and "Total reclaimed space: 1.982MB" in out.stdout, out
    assert odd_box.ok("images", "-q") == ""


def test_push_and_pull_back(odd_box: Box, reg: Registry, tmp_path: Path,
                            make_box: Callable[[Path, Path], Box]) -> None:
    other = make_box(tmp_path / "root2", tmp_path / "run2")
    for name in ("bare", "nulls", "no-layers"):
        target = f"{reg.host}/odd/{name}:v1"
        odd_box.ok("tag", f"test/{name}:v1", target)
        proc = odd_box("push", target)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().splitlines()[-1].startswith("v1: digest: sha256:")
        assert other("pull", target).returncode == 0
        assert other.inspect(target, "{{.Id}}") == odd_box.inspect(target, "{{.Id}}")
    assert other.ok("run", "--rm", "--network", "none", f"{reg.host}/odd/bare:v1",
                    "echo", "pulled") == "pulled\n"
