"""The bash completion ``box completion bash`` generates, loaded into a plain
(non-interactive) bash: COMP_WORDS/COMP_CWORD set, ``_box`` called, COMPREPLY read.
Verbs, management sub-commands, flags and the names of real containers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.commands import table
from tests.conftest import BOX, Box


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "box.bash"
    path.write_text(subprocess.run([BOX, "completion", "bash"], capture_output=True,
                                   text=True, check=True).stdout)
    return path


def complete(script: Path, box: Box, line: str) -> list[str]:
    """What ``_box`` offers for ``line`` (the cursor at its end)."""
    words = line.split(" ")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    bin_dir = str(Path(BOX).parent)
    program = (f'export PATH={bin_dir}:$PATH; source {script}; COMP_WORDS=({quoted}); '
               f"COMP_CWORD={len(words) - 1}; _box; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], env=box.env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_verbs_groups_and_sub_commands(script: Path, box: Box) -> None:
    top = complete(script, box, "box ")
    for verb in ("run", "ps", "rename", "diff", "commit", "attach", "events", "update",
                 "pause", "version", "info", *table.GROUPS):
        assert verb in top
    assert "image_prune" not in top and "system_df" not in top
    assert complete(script, box, "box ren") == ["rename"]
    assert set(complete(script, box, "box re")) == {"rename", "restart"}
    subs = complete(script, box, "box container ")
    assert {"ls", "ps", "list", "prune", "rename", "diff", "attach", "commit"} <= set(subs)
    assert set(complete(script, box, "box system ")) >= {"df", "info", "prune", "events"}
    assert complete(script, box, "box image b") == ["build"]
    assert complete(script, box, "box --root /x ima") == ["image", "images"]


def test_flags_of_the_command_typed(script: Path, box: Box) -> None:
    assert set(complete(script, box, "box ps --")) == {
        "--all", "--filter", "--format", "--help", "--last", "--latest", "--no-trunc",
        "--quiet", "--size"}
    assert set(complete(script, box, "box container ls --f")) == {"--filter", "--format"}
    assert "--memory" in complete(script, box, "box run --mem")
    assert set(complete(script, box, "box commit --")) == {
        "--author", "--change", "--help", "--message", "--pause"}
    assert set(complete(script, box, "box system prune --")) == {
        "--all", "--filter", "--force", "--help", "--volumes"}


def test_container_and_image_names_from_this_root(script: Path, box: Box) -> None:
    box.ok("create", "--network", "none", "--name", "compl-one", "busybox", "true")
    box.ok("create", "--network", "none", "--name", "compl-two", "busybox", "true")
    assert set(complete(script, box, "box rename compl-")) == {"compl-one", "compl-two"}
    assert set(complete(script, box, "box container rm compl-t")) == {"compl-two"}
    assert complete(script, box, "box run busy") == ["busybox:latest"]
    # --root given on the line wins over the environment's
    assert complete(script, box, f"box --root {box.root.parent}/nothing-here rm compl-") == []


_ZSH_STUBS = """
_describe() { local a=${@[-1]}; print -l -- ${(P)a}; }
compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
"""


def zsh_complete(script: Path, box: Box, line: str) -> list[str]:
    """The zsh function run with compsys' two entry points stubbed to print what they
    are given (words/CURRENT/PREFIX as compsys sets them)."""
    words = line.split(" ")
    quoted = " ".join("'" + w + "'" for w in words)
    program = (f"export PATH={Path(BOX).parent}:$PATH\n{_ZSH_STUBS}"
               f"words=({quoted}); CURRENT={len(words)}; PREFIX='{words[-1]}'\n"
               f"source {script}\n")
    proc = subprocess.run(["zsh", "-f", "-c", program], env=box.env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_zsh_completion_from_the_same_table(tmp_path: Path, box: Box) -> None:
    assert shutil.which("zsh"), "zsh is not installed: run scripts/bootstrap (Debian's zsh)"
    text = subprocess.run([BOX, "completion", "zsh"], capture_output=True, text=True,
                          check=True).stdout
    assert text.startswith("#compdef box\n")
    assert subprocess.run(["zsh", "-n"], input=text.encode(), capture_output=True).returncode == 0
    script = tmp_path / "_box"
    script.write_text(text)
    top = zsh_complete(script, box, "box ")
    assert "rename:Rename a container" in top and "container:Manage containers" in top
    assert "ls:List containers" in zsh_complete(script, box, "box container ")
    assert set(zsh_complete(script, box, "box ps --")) >= {"--all", "--format", "--no-trunc"}
    box.ok("create", "--network", "none", "--name", "zcompl-one", "busybox", "true")
    assert "zcompl-one" in zsh_complete(script, box, "box rename zc")
