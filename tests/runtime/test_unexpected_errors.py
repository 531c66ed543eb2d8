"""The last line of defence of `box` and `boxwatch`: an exception nothing handled becomes
one line naming its cause (box: exit 125, boxwatch: exit 1), the traceback only with
BOX_DEBUG=1. And the states that used to raise are fixed, not caught by that net: with
BOX_DEBUG=1 (which would print any traceback the net caught) they print none."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Box
from tests.support.busybox import build_busybox_tar
from tests.support.images import diff_id, write_oci_layout

# A verb whose command raises what no code expects, run through the console script's
# own function (runtime.cli:entry, boxwatch.cli:main), as the installed scripts do.
BOX_BROKEN = """
import sys
import runtime.commands.info as info
def broken(paths, args):
    raise RuntimeError("something nobody foresaw\\nover two lines")
info.cmd_ps = broken
sys.argv = ["box", "ps"]
from runtime.cli import entry
entry()
"""
BOXWATCH_BROKEN = """
import sys
import boxwatch.stack.control as control
def broken(*args, **kwargs):
    raise KeyError("components")
control.status = broken
from boxwatch.cli import main
sys.exit(main(["status", "--state-dir", sys.argv[1]]))
"""


def _python(code: str, *args: str, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BOX_DEBUG"}
    if debug:
        env["BOX_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=Path(__file__).parents[2])


def test_box_unexpected_exception_is_one_line_and_125() -> None:
    proc = _python(BOX_BROKEN)
    assert proc.returncode == 125
    assert proc.stderr == ("box: internal error: RuntimeError: something nobody foresaw over "
                           "two lines (BOX_DEBUG=1 shows where)\n")
    debug = _python(BOX_BROKEN, debug=True)
    assert debug.returncode == 125
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert ", in broken\n" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("box: internal error: RuntimeError")


def test_boxwatch_unexpected_exception_is_one_line(tmp_path: Path) -> None:
    proc = _python(BOXWATCH_BROKEN, str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr == ("boxwatch: internal error: KeyError: 'components' "
                           "(BOX_DEBUG=1 shows where)\n")
    debug = _python(BOXWATCH_BROKEN, str(tmp_path), debug=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_states_that_used_to_raise_are_fixed_not_netted(
        tmp_path: Path, make_box: Callable[[Path, Path], Box]) -> None:
    """`box images` over an image without `created` (issue 12's ValueError), a damaged
    config.v2.json and repositories.json under `ps -a`/`images`/`system df`/`inspect`:
    BOX_DEBUG=1 and still no traceback (boxwatch's damaged state files:
    tests/stack/test_stack_damaged_state.py)."""
    box = make_box(tmp_path / "root", tmp_path / "run")
    layer = build_busybox_tar(tmp_path / "busybox.tar").read_bytes()
    write_oci_layout(tmp_path / "oci", {"rootfs": {"type": "layers",
                                                   "diff_ids": [diff_id(layer)]}},
                     [layer], ref="test/nodate:v1")
    box.ok("load", "-i", str(tmp_path / "oci"))
    box.ok("create", "--name", "c1", "--network", "none", "test/nodate:v1", "true")
    box.ok("create", "--name", "c2", "--network", "none", "test/nodate:v1", "true")
    debug_env = {**box.env, "BOX_DEBUG": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "box"), *args],
                              capture_output=True, text=True, env=debug_env, timeout=60,
                              stdin=subprocess.DEVNULL)

    proc = run("images", "--format", "{{.Repository}} {{.CreatedSince}}")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "test/nodate N/A\n", "")
    c1 = box.inspect("c1", "{{.Id}}")
    (box.root / "containers" / c1 / "config.v2.json").write_text('{"ID": "cut')
    (box.root / "image" / "repositories.json").write_text("[]")
    for args in (["ps", "-a"], ["images"], ["system", "df"], ["inspect", "c1"]):
        proc = run(*args)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "c2" in run("ps", "-a").stdout
    (box.root / "image" / "repositories.json").write_text('{"Repositories": {}}')
    box.ok("rm", "c2")

