"""The alerting path for tests and the bench: a real ``prometheus`` that evaluates rule
files and sends to a real ``alertmanager`` (Debian's ``prometheus-alertmanager``), which
posts to a webhook the caller runs. Everything on loopback, in temp dirs, in its own
process group, removed on exit; Alertmanager's clustering is off.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.prometheus import LoopbackServer, Prometheus

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Alertmanager(LoopbackServer):
    """Routes every alert to ``webhook`` at once (group_wait 0s)."""

    name = "alertmanager"
    binary = ALERTMANAGER

    def __init__(self, webhook: str) -> None:
        self.webhook = webhook
        super().__init__()

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

    def argv(self, config_file: Path) -> list[str]:
        return [self.binary, f"--config.file={config_file}",
                f"--storage.path={self.workdir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]


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
                f"        - targets: ['{self.alertmanager}']\n")
