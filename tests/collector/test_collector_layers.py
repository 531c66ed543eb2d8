"""The writable layer's size (``container_fs_usage_bytes``): a real box container writes
into its overlay upperdir and the collector's number follows, equal to what ``box ps -s``
computes; Docker's overlay2 layout (layerdb mount-id) is found; the walk's cost cap
holds; mountinfo lines parse back to what was written."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cgroupstats.model import ContainerRef
from collector.api import sample_to_dict
from collector.discover import Discovery
from collector.filesystems import Filesystems, overlay_upper, parse_mountinfo
from collector.layers import LayerSizes
from collector.lineproto import Encoder
from collector.pipeline import Pipeline
from collector.sinks.prometheus import PrometheusSink
from formats.layers import tree_size
from runtime.format.human import human_size_precision
from tests.support.wait import wait_until


def _series(text: str, name: str, cid: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(name + "{") and f'/{cid}"' in ln]


def test_writable_layer_size_follows_what_the_container_writes(box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "head -c 250000 /dev/zero > /first; sleep 60").strip()
    upper = str(box.root / "overlay2" / cid / "diff")
    wait_until(lambda: os.path.exists(f"{upper}/first") and tree_size(upper) >= 250_000, 10,
               "the container's first write")
    prometheus = PrometheusSink()
    layers = LayerSizes(every=0.3, duty=0.5)
    pipe = Pipeline(Discovery([box.root], "/sys/fs/cgroup"), [prometheus], layers=layers)
    try:
        def layer():
            s = {s.ref.id: s for s in pipe.tick()}.get(cid)
            return s.writable_layer if s is not None else None

        first = wait_until(layer, 15, "a first walk of the layer")
        assert first.usage == tree_size(upper)
        device, limit = Filesystems().device_of(upper)
        assert (first.device, first.limit) == (device, limit) and limit > first.usage
        # the same number as box ps -s, through the same walk
        size = box.ok("ps", "--filter", f"id={cid}", "--format", "{{.Size}}").strip()
        assert size.startswith(human_size_precision(first.usage, 3) + " (virtual ")
        text = prometheus.render().decode()
        [usage_line] = _series(text, "container_fs_usage_bytes", cid)
        assert f'device="{device}"' in usage_line and float(usage_line.split()[-1]) == first.usage
        [limit_line] = _series(text, "container_fs_limit_bytes", cid)
        assert float(limit_line.split()[-1]) == limit

        box.ok("exec", cid, "sh", "-c", "head -c 3000000 /dev/zero > /second")
        grown = wait_until(lambda: (u := layer()) and u.usage >= first.usage + 3_000_000 and u,
                           15, "the walk to see the second write",
                           seen=lambda: layers.usage.get(cid))
        assert grown.usage == tree_size(upper)
        doc = sample_to_dict(pipe.latest[cid])["writable_layer"]
        vfs = os.statvfs(upper)  # container_fs_inodes_*: the layer's filesystem's
        assert doc == {"device": device, "usage": grown.usage, "limit": limit,
                       "inodes_free": doc["inodes_free"], "inodes_total": vfs.f_files}
        assert 0 < doc["inodes_free"] <= vfs.f_files
        lines = [ln for ln in Encoder("h").sample(pipe.latest[cid])
                 if ln.startswith("container_fs,")]
        assert len(lines) == 1 and f"usage={grown.usage}i,limit={limit}i," in lines[0]
        assert f",inodes_total={vfs.f_files}i " in lines[0]
        text = prometheus.render().decode()
        [inodes] = _series(text, "container_fs_inodes_total", cid)
        assert f'device="{device}"' in inodes and float(inodes.split()[-1]) == vfs.f_files

        box.ok("exec", cid, "rm", "/first")
        wait_until(lambda: (u := layer()) and u.usage < grown.usage - 200_000, 15,
                   "the walk to see the removal")
    finally:
        pipe.close()
    assert layers._thread is None


def test_docker_overlay2_layer_is_found_by_its_mount_id(tmp_path: Path) -> None:
    """A Docker root as Docker lays it out: the layer is ``overlay2/<mount-id>/diff``."""
    cid, mount_id = "d" * 64, "3f" * 32
    config = tmp_path / "containers" / cid / "config.v2.json"
    config.parent.mkdir(parents=True)
    config.write_text("{}")
    mounts = tmp_path / "image" / "overlay2" / "layerdb" / "mounts" / cid
    mounts.mkdir(parents=True)
    (mounts / "mount-id").write_text(mount_id)
    diff = tmp_path / "overlay2" / mount_id / "diff"
    (diff / "var" / "log").mkdir(parents=True)
    (diff / "var" / "log" / "app.log").write_bytes(b"l" * 54_321)
    ref = ContainerRef(id=cid, name="web", image="nginx", cgroup=f"/docker/{cid}",
                       cgroup_version=1, cgroup_paths={}, state_file=str(config),
                       source="docker")
    layers = LayerSizes(every=60, duty=0.5)
    try:
        layers.sync({cid: ref})
        usage = wait_until(lambda: layers.usage.get(cid), 10, "the walk of the Docker layer")
        assert usage.usage == 54_321
        layers.sync({})  # the container went: forgotten
        assert cid not in layers.usage
    finally:
        layers.close()


def test_the_walk_keeps_to_its_share_of_a_core(tmp_path: Path) -> None:
    diff = tmp_path / "diff"
    for d in range(20):
        (diff / f"d{d}").mkdir(parents=True)
        for f in range(200):
            (diff / f"d{d}" / f"f{f}").write_bytes(b"x" * f)
    layers = LayerSizes(duty=0.2, chunk=250)
    t0 = time.monotonic()
    usage = layers.walk(str(diff))
    wall = time.monotonic() - t0
    assert usage is not None and usage.usage == tree_size(str(diff)) == 20 * sum(range(200))
    assert layers.entries_total == 20 + 20 * 200
    # the walk used at most its share: wall time is at least cpu / duty, less the last step
    last_step = layers.cpu_seconds_total * 250 / layers.entries_total
    assert wall >= (layers.cpu_seconds_total - last_step) / 0.2 * 0.9


_PATH = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\t\n\\ "),
                min_size=1, max_size=30).map(lambda p: "/" + p)


def _escape(path: str) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


@settings(max_examples=300, deadline=None)
@given(mounts=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 1 << 20), _PATH,
                                 st.sampled_from(["ext4", "overlay", "tmpfs", "xfs"]), _PATH,
                                 st.lists(st.sampled_from(["shared:1", "master:2"]),
                                          max_size=2)),
                       max_size=6))
def test_mountinfo_lines_parse_back(mounts) -> None:
    text = "".join(
        f"{i + 20} 1 {major}:{minor} / {_escape(point)} rw,relatime {' '.join(opt)}"
        f"{' ' if opt else ''}- {fstype} {_escape(source)} rw\n"
        for i, (major, minor, point, fstype, source, opt) in enumerate(mounts))
    parsed = parse_mountinfo(text + "garbage line\n")
    assert [(m.majmin, m.mountpoint, m.fstype, m.source) for m in parsed] == [
        (f"{major}:{minor}", point, fstype, source)
        for major, minor, point, fstype, source, _ in mounts]


def test_a_container_without_state_file_is_sized_from_its_mountinfo(box) -> None:
    """A group found in the cgroup tree only (a pod under containerd or CRI-O): its
    layer is the upperdir its process has on "/", read from /proc/<pid>/mountinfo, with
    the pid from the group's cgroup.procs. A real box container stands in for it."""
    cid = box.ok("run", "-d", "--network", "none", "busybox", "sh", "-c",
                 "head -c 123456 /dev/zero > /data; sleep 60").strip()
    upper = str(box.root / "overlay2" / cid / "diff")
    wait_until(lambda: tree_size(upper) >= 123_456, 10, "the container's write")
    paths = json.loads(box.inspect(cid, "{{json .Box.CgroupPaths}}"))
    raw = ContainerRef(id=f"/box/{cid}", name="", image="", cgroup=f"/box/{cid}",
                       cgroup_version=1, cgroup_paths=paths)  # no state file, no pid
    layers = LayerSizes(every=60, duty=0.5)
    try:
        layers.sync({raw.id: raw})
        assert layers._dirs[raw.id] == upper
        usage = wait_until(lambda: layers.usage.get(raw.id), 10, "the walk of the layer")
        assert usage.usage == tree_size(upper)
    finally:
        layers.close()


def test_overlay_upper_of_a_mountinfo() -> None:
    line = ("1 0 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,"
            "upperdir=/var/lib/containerd/snapshots/12/f\\054s,workdir=/w\n")
    host = "2 1 254:0 / / rw - ext4 /dev/vda rw\n"
    assert overlay_upper(parse_mountinfo(line)) == "/var/lib/containerd/snapshots/12/f,s"
    assert overlay_upper(parse_mountinfo(line + host)) == ""  # the last "/" counts
    assert overlay_upper(parse_mountinfo("")) == ""


def test_bad_layer_flags_name_the_value() -> None:
    import subprocess
    import sys

    boxwatch = str(Path(sys.executable).parent / "boxwatch")
    for flag, value in (("--fs-duty", "2"), ("--fs-duty", "abc"), ("--fs-interval", "soon")):
        proc = subprocess.run([boxwatch, "collector", flag, value, "--once"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].endswith(f"'{value}'"), proc.stderr
