"""Attack: an image whose volume target is a symlink out of the root (``/data ->
/tmp/x/made``, ``/up -> ../../../../root``) made ``box run -v ...:/data`` create and mount
on the host's path. Targets now resolve with openat2 RESOLVE_IN_ROOT and are mounted
through the checked fd (a dangling link's target is created inside the root, as runc
does); a read-only mount is remounted through the mount it made."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import Box
from tests.security.conftest import imported_rootfs
from tests.support.busybox import build_busybox_rootfs


def test_volume_targets_through_symlinks_stay_inside(box: Box, tmp_path: Path) -> None:
    away = f"/tmp/box-escape-{uuid.uuid4().hex[:8]}"
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "data").symlink_to(f"{away}/made")  # dangling, absolute
    (rootfs / "up").symlink_to("../../../../root")  # climbs out, relative
    (rootfs / "ro").symlink_to(f"{away}/ro")
    (rootfs / "root").mkdir(exist_ok=True)
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    (host_dir / "from-host").write_text("bound\n")
    before_root = sorted(p.name for p in Path("/root").iterdir())
    vol = f"boxesc{uuid.uuid4().hex[:8]}"
    script = (f"echo hi > /data/f && cat {away}/made/f && cat /root/from-host && "
              f"cat {away}/ro/from-host && ! touch /ro/x 2>/dev/null && echo ro-ok")
    with imported_rootfs(box, rootfs, "esc") as image:
        try:
            out = box.ok("run", "--rm", "--network", "none", "-v", f"{vol}:/data",
                         "-v", f"{host_dir}:/up", "-v", f"{host_dir}:/ro:ro", image,
                         "sh", "-c", script)
        finally:
            box("volume", "rm", "-f", vol)
    assert out == "hi\nbound\nbound\nro-ok\n", out
    assert not Path(away).exists(), f"{away} created on the host"
    assert sorted(p.name for p in Path("/root").iterdir()) == before_root
    assert sorted(p.name for p in host_dir.iterdir()) == ["from-host"]


def test_a_file_volume_target_through_a_symlink(box: Box, tmp_path: Path) -> None:
    rootfs = build_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "conf").symlink_to("/etc/box-made.conf")
    src = tmp_path / "app.conf"
    src.write_text("setting=1\n")
    with imported_rootfs(box, rootfs, "escf") as image:
        out = box.ok("run", "--rm", "--network", "none", "-v", f"{src}:/conf:ro", image,
                     "cat", "/etc/box-made.conf")
    assert out == "setting=1\n"
    assert not Path("/etc/box-made.conf").exists()
