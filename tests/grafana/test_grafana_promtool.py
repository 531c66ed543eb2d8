"""grafana/prometheus/rules.yml passes ``promtool check rules`` and its unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.grafana.live import for_zero
from tests.support.prometheus import PROMTOOL

DIR = Path(__file__).resolve().parents[2] / "grafana" / "prometheus"


def promtool(*args: str, cwd: Path = DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_check_rules() -> None:
    proc = promtool("check", "rules", "rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 9 rules found" in proc.stdout


def test_unit_tests_pass() -> None:
    proc = promtool("test", "rules", "rules.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unit_tests_would_catch_a_changed_duration(tmp_path: Path) -> None:
    """The e2e test's ``for: 0s`` copy fails the same unit tests: they do check ``for:``."""
    (tmp_path / "rules.yml").write_text(for_zero((DIR / "rules.yml").read_text()))
    (tmp_path / "rules.test.yml").write_text((DIR / "rules.test.yml").read_text())
    assert "for: 0s" in (tmp_path / "rules.yml").read_text()
    proc = promtool("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "ContainerMemoryNearLimit" in proc.stdout + proc.stderr
