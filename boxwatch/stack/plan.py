"""From a :class:`~boxwatch.config.Config` to the stack's components: what each runs,
where it listens, how its health is checked, and the config files it needs.

Order matters: influxd first (the databases are created once it answers), then the
collector and the shipper writing to it, then Prometheus scraping them and Alertmanager.
Everything lives under the state dir::

    <state_dir>/influxdb/      influxdb.conf, credentials (0600), meta/, data/, wal/
    <state_dir>/prometheus/    prometheus.yml, data/
    <state_dir>/alertmanager/  alertmanager.yml, data/
    <state_dir>/shipper/       registry.json (offsets)
    <state_dir>/logs/          <component>.log, supervisor.log
    <state_dir>/run/           plan.json, <component>.pid, supervisor.pid, status.json

The state dir is private (0700, see ``credentials``): influxd requires its admin user
and password, which the collector and the shipper read from ``influxdb/credentials`` by
path (never in argv); Prometheus runs without ``--web.enable-lifecycle``, so nobody can
reload or stop it over HTTP (it reloads its config on SIGHUP).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from boxwatch.config import Config
from boxwatch.stack import influxd
from boxwatch.stack.credentials import credentials_path


@dataclass
class Component:
    """One supervised process."""

    name: str
    argv: list[str]
    port: int
    health: str  # URL that answers 2xx when the component works
    flag: str  # the option that sets its port, for error messages
    hook: str = ""  # run once after it first turns healthy (see supervisor.HOOKS)
    hook_args: dict[str, object] = field(default_factory=dict)


@dataclass
class Plan:
    state_dir: str
    components: list[Component]
    skipped: dict[str, str]  # optional component -> why it does not run
    files: dict[str, str]  # path -> content, written before anything starts

    @property
    def run_dir(self) -> Path:
        return Path(self.state_dir) / "run"

    @property
    def log_dir(self) -> Path:
        return Path(self.state_dir) / "logs"

    def get(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def to_json(self) -> str:
        return json.dumps({"state_dir": self.state_dir, "skipped": self.skipped,
                           "components": [asdict(c) for c in self.components]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """ValueError (saying what is wrong) for any text that is not a plan: the file
        can be empty, cut short or damaged, and callers report it in one line."""
        doc = json.loads(text)
        try:
            return cls(doc["state_dir"], [Component(**c) for c in doc["components"]],
                       dict(doc.get("skipped") or {}), {})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a stack plan ({type(exc).__name__}: {exc})") from None


def probe_host(listen_host: str) -> str:
    """Where to reach a server bound to ``listen_host`` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen_host, listen_host)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build(cfg: Config, python: str = sys.executable) -> Plan:
    """The plan for ``cfg``; optional components whose binary is missing (with
    ``enabled = "auto"``) are left out and listed in ``skipped``."""
    state = str(cfg.state_dir)
    host = cfg["listen_host"]
    near = probe_host(host)

    def url(port: int) -> str:
        return "http://" + _hostport(near, port)

    files: dict[str, str] = {}
    skipped: dict[str, str] = {}
    comps: list[Component] = []

    idir = f"{state}/influxdb"
    files[f"{idir}/influxdb.conf"] = influxd.config_text(idir, cfg["influxdb.port"],
                                                          cfg["influxdb.rpc_port"], auth=True,
                                                          host=host)
    influx_url = url(cfg["influxdb.port"])
    creds = str(credentials_path(state))
    comps.append(Component(
        "influxd", influxd.argv(f"{idir}/influxdb.conf", cfg["influxdb.binary"]),
        cfg["influxdb.port"], influx_url + "/ping", "--influxdb-port", hook="influx_init",
        hook_args={"url": influx_url, "retention": cfg["influxdb.retention"],
                   "credentials": creds,
                   "databases": [cfg["influxdb.metrics_db"], cfg["influxdb.logs_db"]]}))

    want_prom = cfg.switch("prometheus.enabled", os.access(cfg["prometheus.binary"], os.X_OK))
    want_am = cfg.switch("alertmanager.enabled", os.access(cfg["alertmanager.binary"], os.X_OK))
    for name, want in (("prometheus", want_prom), ("alertmanager", want_am)):
        if not want:
            skipped[name] = ("disabled" if cfg[f"{name}.enabled"] == "false"
                             else f"{cfg[name + '.binary']} not installed")
    am_url = url(cfg["alertmanager.port"])
    webhook = am_url + "/api/v2/alerts" if want_am else cfg["alertmanager.webhook"]

    roots = [a for r in cfg["roots"] for a in ("--root", r)]
    cport, sport = cfg["collector.port"], cfg["shipper.port"]
    collector = [python, "-m", "boxwatch.cli", "collector", *roots,
                 "--listen", _hostport(host, cport), "--interval", cfg["collector.interval"],
                 "--influx-url", influx_url, "--influx-api", "v1",
                 "--influx-db", cfg["influxdb.metrics_db"], "--influx-credentials", creds,
                 # cAdvisor's default set and "process" (the pids alert's container_threads)
                 "--enable_metrics", PROCESS_TOO]
    if webhook:
        collector += ["--alert-webhook", webhook]
    if cfg["host"]:
        collector += ["--host", cfg["host"]]
    comps.append(Component("collector", collector + cfg["collector.args"], cport,
                           url(cport) + "/healthz", "--collector-port"))
    shipper = [python, "-m", "boxwatch.cli", "shipper", *roots,
               "--listen", _hostport(host, sport), "--sink", f"influxdb-v1={influx_url}",
               "--influx-db", cfg["influxdb.logs_db"], "--influx-credentials", creds,
               "--registry", f"{state}/shipper/registry.json"]
    if cfg["host"]:
        shipper += ["--host", cfg["host"]]
    comps.append(Component("shipper", shipper + cfg["shipper.args"], sport,
                           url(sport) + "/healthz", "--shipper-port"))

    if want_prom:
        pdir = f"{state}/prometheus"
        files[f"{pdir}/prometheus.yml"] = prometheus_yml(
            [_hostport(near, cport)], [_hostport(near, sport)], cfg["prometheus.rules"],
            _hostport(near, cfg["alertmanager.port"]) if want_am else "",
            cfg["prometheus.scrape_interval"])
        comps.append(Component("prometheus", [
            cfg["prometheus.binary"], f"--config.file={pdir}/prometheus.yml",
            f"--storage.tsdb.path={pdir}/data",
            f"--storage.tsdb.retention.time={cfg['prometheus.retention']}",
            f"--web.listen-address={_hostport(host, cfg['prometheus.port'])}"],
            cfg["prometheus.port"],
            url(cfg["prometheus.port"]) + "/-/ready", "--prometheus-port"))
    if want_am:
        adir = f"{state}/alertmanager"
        files[f"{adir}/alertmanager.yml"] = alertmanager_yml(cfg["alertmanager.webhook"])
        comps.append(Component("alertmanager", [
            cfg["alertmanager.binary"], f"--config.file={adir}/alertmanager.yml",
            f"--storage.path={adir}/data",
            f"--web.listen-address={_hostport(host, cfg['alertmanager.port'])}",
            "--cluster.listen-address="], cfg["alertmanager.port"], am_url + "/-/ready",
            "--alertmanager-port"))
    if cfg.switch("web.enabled", True):
        comps.append(web_component(cfg, python, roots, influx_url, url(cport),
                                   am_url if want_am else "", url(cfg["web.port"]), creds))
    else:
        skipped["web"] = "disabled"
    return Plan(state, comps, skipped, files)


def web_component(cfg: Config, python: str, roots: list[str], influx_url: str,
                  collector_url: str, alertmanager_url: str, web_url: str,
                  influx_credentials: str = "") -> Component:
    """``boxwatch web`` over the stack's parts (the token, if any, only by file: argv is
    public to every user of the machine)."""
    argv = [python, "-m", "boxwatch.cli", "web", *roots,
            "--listen", _hostport(cfg["listen_host"], cfg["web.port"]),
            "--collector-url", collector_url, "--influx-url", influx_url,
            "--influx-db", cfg["influxdb.metrics_db"], "--logs-db", cfg["influxdb.logs_db"],
            "--alertmanager-url", alertmanager_url]
    if influx_credentials:
        argv += ["--influx-credentials", influx_credentials]
    if cfg["web.auth_token_file"]:
        argv += ["--auth-token-file", cfg["web.auth_token_file"]]
    if cfg["web.enable_exec"] == "true":
        argv += ["--enable-exec"]
    if cfg["host"]:
        argv += ["--host", cfg["host"]]
    return Component("web", argv, cfg["web.port"], web_url + "/healthz", "--web-port")


PROCESS_TOO = "cpu,percpu,memory,cpuLoad,disk,diskIO,network,oom_event,pressure,process"


def prometheus_yml(collectors: list[str], shippers: list[str], rules: str, alertmanager: str,
                   interval: str) -> str:
    """Scrape the collector and the shipper, evaluate ``rules``, alert to Alertmanager."""
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
    if rules:
        lines += ["rule_files:", f"  - {json.dumps(rules)}"]
    if alertmanager:
        lines += ["alerting:", "  alertmanagers:", "    - static_configs:",
                  f"        - targets: [{json.dumps(alertmanager)}]"]
    lines += ["scrape_configs:"]
    for job, targets in (("boxwatch-collector", collectors), ("boxwatch-shipper", shippers)):
        lines += [f"  - job_name: {job}", "    static_configs:",
                  f"      - targets: [{', '.join(json.dumps(t) for t in targets)}]"]
    return "\n".join(lines) + "\n"


def alertmanager_yml(webhook: str) -> str:
    """One route: every alert, grouped per alert and container, to ``webhook`` (or to a
    receiver without integrations: alerts are then only listed by the API and UI)."""
    lines = ["route:", "  receiver: boxwatch",
             "  group_by: ['alertname', 'name', 'container_name']",
             "  group_wait: 2s", "  group_interval: 10s", "  repeat_interval: 1h",
             "receivers:", "  - name: boxwatch"]
    if webhook:
        lines += ["    webhook_configs:", f"      - url: {json.dumps(webhook)}",
                  "        send_resolved: true"]
    return "\n".join(lines) + "\n"
