"""`boxwatch status` over a damaged state dir (plan.json or status.json empty, cut short,
garbage, the wrong JSON type, without its keys): one line naming the file, or the
status the pid files and probes give; never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from boxwatch import config
from boxwatch.stack import plan

BOXWATCH = str(Path(sys.executable).parent / "boxwatch")
DAMAGES = {"empty": b"", "cut-short": b'{"state_dir": "/x", "compo', "garbage": b"\x00\xff{{",
           "wrong-type": b"[1, 2]", "missing-keys": b'{"unrelated": 1}',
           "wrong-inner-types": b'{"state_dir": "/x", "components": [1], "skipped": 5}'}


def _status(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BOXWATCH, "status", "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=60)


def _valid_plan(state_dir: Path) -> str:
    parser = argparse.ArgumentParser()
    config.add_flags(parser, ("",))
    cfg = config.load(parser.parse_args(["--state-dir", str(state_dir)]), {})
    return plan.build(cfg).to_json()


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_plan_is_one_line(tmp_path: Path, damage: str) -> None:
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "plan.json"
    path.write_bytes(DAMAGES[damage])
    proc = _status(tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"boxwatch status: damaged state file {path}: ")


@pytest.mark.parametrize("damage", [*DAMAGES, "components-a-list", "component-a-number"])
def test_damaged_status_file_falls_back_to_pid_files(tmp_path: Path, damage: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "plan.json").write_text(_valid_plan(tmp_path))
    extra = {"components-a-list": b'{"components": []}',
             "component-a-number": b'{"components": {"influxd": 5}}'}
    (tmp_path / "run" / "status.json").write_bytes(extra.get(damage) or DAMAGES[damage])
    (tmp_path / "run" / "influxd.pid").write_bytes(b"\x00garbage")  # a damaged pid file too
    proc = _status(tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, proc  # nothing runs
    assert "influxd" in proc.stdout and "down" in proc.stdout
