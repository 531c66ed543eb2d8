"""The alerting path for tests and the bench: a real ``prometheus`` that evaluates rule
files and sends to a real ``alertmanager`` (Debian's ``prometheus-alertmanager``), which
posts to a webhook the caller runs. Everything on loopback, in temp dirs, in its own
process group, removed on exit; Alertmanager's clustering is off.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.prometheus import Prometheus, PrometheusError, free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Alertmanager:
    """Routes every alert to ``webhook`` at once (group_wait 0s)."""

    def __init__(self, webhook: str) -> None:
        self.webhook = webhook
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="box-alertmanager-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return (
            "route:\n"
            "  receiver: hook\n"
            "  group_by: ['alertname', 'name', 'container_name']\n"
            "  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: '{self.webhook}'\n        send_resolved: false\n"
        )

    def start(self, timeout: float = 30.0) -> None:
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(self.config())
        with open(self.workdir / "alertmanager.log", "ab") as log:
            self.proc = subprocess.Popen(
                [ALERTMANAGER, f"--config.file={cfg}", f"--storage.path={self.workdir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"alertmanager exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise PrometheusError(f"alertmanager not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.workdir / "alertmanager.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(30)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Alertmanager:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RulesPrometheus(Prometheus):
    """Prometheus that loads ``rules`` (a file's text) and alerts to ``alertmanager``."""

    def __init__(self, targets: list[str], rules: str, alertmanager: str,
                 scrape_interval: str = "1s", evaluation_interval: str = "1s") -> None:
        super().__init__(targets, scrape_interval)
        self.evaluation_interval = evaluation_interval
        (self.workdir / "rules.yml").write_text(rules)
        self.alertmanager = alertmanager

    def config(self) -> str:
        base = super().config().replace(
            "global:\n", f"global:\n  evaluation_interval: {self.evaluation_interval}\n", 1)
        return (base + f"rule_files:\n  - {self.workdir}/rules.yml\n"
                "alerting:\n  alertmanagers:\n    - static_configs:\n"
                f"        - targets: ['{self.alertmanager}']\n")  # fmt: skip
