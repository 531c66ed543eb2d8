"""The local stack's configuration: one table of options, read from (lowest first) the
defaults, one TOML file (``boxwatch.toml``), ``BOXWATCH_*`` environment variables and
command-line flags.

Every option has one name in each place, derived from the table: ``[influxdb] port`` in
the file is ``BOXWATCH_INFLUXDB_PORT`` in the environment and ``--influxdb-port`` on the
command line; top-level keys (``state_dir``) are ``BOXWATCH_STATE_DIR`` and
``--state-dir``. The file is ``--config PATH``, else ``$BOXWATCH_CONFIG``, else
``./boxwatch.toml``, else ``/etc/boxwatch/boxwatch.toml`` (none is fine). Unknown keys
are errors, so a typo never silently falls back to a default. ``boxwatch.toml.example``
documents every key.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEARCH_PATH = ("boxwatch.toml", "/etc/boxwatch/boxwatch.toml")
DEFAULT_STATE_DIR = "/var/lib/boxwatch"


class ConfigError(Exception):
    """A config value that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class Option:
    """One configuration key: ``section`` ("" = top level), type ``kind`` (str, int,
    list, switch: auto/true/false), default and help."""

    section: str
    key: str
    kind: str
    default: Any
    help: str

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key

    @property
    def env(self) -> str:
        return "BOXWATCH_" + self.dotted.replace(".", "_").upper()

    @property
    def flag(self) -> str:
        return "--" + self.dotted.replace(".", "-").replace("_", "-")

    @property
    def dest(self) -> str:
        return "cfg_" + self.dotted.replace(".", "__")


def _rules_default() -> str:
    path = REPO / "grafana" / "prometheus" / "rules.yml"
    return str(path) if path.is_file() else ""


OPTIONS: tuple[Option, ...] = (
    Option("", "state_dir", "str", DEFAULT_STATE_DIR,
           "where the stack keeps its data, configs, logs and pidfiles"),
    Option("", "roots", "list", ["/var/lib/box", "/var/lib/docker"],
           "container state roots the collector and shipper watch (repeatable flag; "
           "comma-separated in the environment)"),
    Option("", "listen_host", "str", "127.0.0.1", "address every part of the stack listens on"),
    Option("", "host", "str", "", "node name the collector, the shipper and the web UI tag "
                                  "every point and log entry with (default: the hostname)"),
    Option("influxdb", "binary", "str", "/usr/bin/influxd", "InfluxDB 1.x server"),
    Option("influxdb", "port", "int", 8086, "InfluxDB HTTP port"),
    Option("influxdb", "rpc_port", "int", 8088, "InfluxDB backup/restore RPC port"),
    Option("influxdb", "metrics_db", "str", "boxwatch", "database of the collector's metrics"),
    Option("influxdb", "logs_db", "str", "logs", "database of the shipper's logs"),
    Option("influxdb", "retention", "str", "7d",
           "retention policy of both databases (InfluxQL duration, e.g. 7d, 24h, INF)"),
    Option("collector", "port", "int", 9180, "collector /metrics, /healthz and API port"),
    Option("collector", "interval", "str", "1s", "sampling interval"),
    Option("collector", "args", "list", [], "extra `boxwatch collector` flags"),
    Option("shipper", "port", "int", 9181, "shipper /metrics and /healthz port"),
    Option("shipper", "args", "list", [], "extra `boxwatch shipper` flags"),
    Option("prometheus", "enabled", "switch", "auto",
           "run Prometheus: auto (when the binary exists), true, false"),
    Option("prometheus", "binary", "str", "/usr/bin/prometheus", "Prometheus server"),
    Option("prometheus", "port", "int", 9090, "Prometheus port"),
    Option("prometheus", "rules", "str", _rules_default(),
           "alert rules file (default: the repo's grafana/prometheus/rules.yml)"),
    Option("prometheus", "scrape_interval", "str", "5s", "scrape and rule evaluation interval"),
    Option("prometheus", "retention", "str", "7d", "Prometheus TSDB retention"),
    Option("alertmanager", "enabled", "switch", "auto",
           "run Alertmanager: auto (when the binary exists), true, false"),
    Option("alertmanager", "binary", "str", "/usr/bin/prometheus-alertmanager",
           "Alertmanager server"),
    Option("alertmanager", "port", "int", 9093, "Alertmanager port"),
    Option("alertmanager", "webhook", "str", "",
           "URL Alertmanager posts notifications to (without Alertmanager: where the "
           "collector posts its instant OOM alert); empty: alerts are only listed"),
    Option("web", "enabled", "switch", "true",
           "run the web UI (`boxwatch web`) as part of the stack: auto, true, false"),
    Option("web", "port", "int", 9200, "web UI port"),
    Option("web", "auth_token_file", "str", "",
           "file holding the web UI's access token (required when listen_host is not "
           "loopback)"),
    Option("web", "enable_exec", "switch", "false",
           "offer the exec console (a shell in a container) in the web UI"),
    Option("logs", "store", "str", "influxdb",
           "what `boxwatch logs` searches: influxdb, loki or elasticsearch"),
    Option("logs", "url", "str", "",
           "the store's URL (default: the local stack's InfluxDB)"),
    Option("logs", "database", "str", "",
           "InfluxDB database (or InfluxDB 2 bucket mapped by DBRP); default influxdb.logs_db"),
    Option("logs", "index", "str", "boxwatch-logs-*", "Elasticsearch index pattern"),
    Option("logs", "token", "str", "",
           "InfluxDB 2 token (Authorization: Token) or Elasticsearch API key"),
    Option("logs", "username", "str", "", "basic auth user for the log store"),
    Option("logs", "password", "str", "", "basic auth password for the log store"),
    Option("logs", "credentials", "str", "",
           "file with the InfluxDB user and password (netrc form: 'default login USER "
           "password PASS'); default: the local stack's <state_dir>/influxdb/credentials "
           "when logs.url is empty"),
    Option("logs", "tenant", "str", "", "Loki tenant (X-Scope-OrgID)"),
)
BY_NAME = {o.dotted: o for o in OPTIONS}
SECTIONS = sorted({o.section for o in OPTIONS if o.section})


class Config:
    """The resolved values (``cfg.get("influxdb.port")`` or ``cfg["influxdb.port"]``) and
    where each came from (``cfg.source["influxdb.port"]``: default/file/env/flag)."""

    def __init__(self, values: dict[str, Any], source: dict[str, str], path: str | None) -> None:
        self.values = values
        self.source = source
        self.path = path

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    get = __getitem__

    @property
    def state_dir(self) -> Path:
        return Path(self.values["state_dir"]).absolute()

    def url(self, section: str) -> str:
        return f"http://{self.values['listen_host']}:{self.values[section + '.port']}"

    def switch(self, name: str, binary_present: bool) -> bool:
        value = self.values[name]
        return binary_present if value == "auto" else bool(value == "true")


def _coerce(opt: Option, value: Any, where: str) -> Any:
    """``value`` as ``opt``'s type; ConfigError naming ``where`` and the value if not."""
    kind = opt.kind
    if kind == "int":
        if isinstance(value, bool):
            raise ConfigError(f"{where}: {opt.dotted} must be a number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {opt.dotted} must be a number, got {value!r}") from None
        if opt.key.endswith("port") and not 0 < number < 65536:
            raise ConfigError(f"{where}: {opt.dotted} must be a port (1-65535), got {value!r}")
        return number
    if kind == "list":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {opt.dotted} must be a list of strings, got {value!r}")
        return list(value)
    if kind == "switch":
        text = str(value).lower() if not isinstance(value, bool) else str(value).lower()
        if text not in ("auto", "true", "false"):
            raise ConfigError(f"{where}: {opt.dotted} must be auto, true or false, got {value!r}")
        return text
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {opt.dotted} must be a string, got {value!r}")
    return value


def find_file(explicit: str | None, env: Mapping[str, str]) -> str | None:
    """The config file to read: ``explicit`` (must exist), ``$BOXWATCH_CONFIG`` (must
    exist), else the first of SEARCH_PATH that exists, else None."""
    for given, what in ((explicit, "--config"), (env.get("BOXWATCH_CONFIG"), "BOXWATCH_CONFIG")):
        if given:
            if not os.path.isfile(given):
                raise ConfigError(f"{what}: no such config file: {given!r}")
            return given
    return next((p for p in SEARCH_PATH if os.path.isfile(p)), None)


def read_file(path: str) -> dict[str, Any]:
    """The file's keys as dotted names; ConfigError for bad TOML or unknown keys."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict) and key in SECTIONS:
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    unknown = sorted(set(out) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: see boxwatch.toml.example)")
    return out


def add_flags(parser: argparse.ArgumentParser, sections: Iterable[str] | None = None) -> None:
    """``--config`` and one flag per option (of ``sections`` only, "" = top level, when
    given); every default is None so unset flags do not override file or environment."""
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="boxwatch.toml to read (default $BOXWATCH_CONFIG, ./boxwatch.toml, "
                             "/etc/boxwatch/boxwatch.toml)")
    wanted = None if sections is None else set(sections)
    group = parser.add_argument_group("configuration (also BOXWATCH_* and boxwatch.toml)")
    for opt in OPTIONS:
        if wanted is not None and opt.section not in wanted:
            continue
        flag = "--root" if opt.dotted == "roots" else opt.flag
        kw: dict[str, Any] = {"dest": opt.dest, "default": None, "help": f"{opt.help} [{opt.env}]"}
        if opt.kind == "list":
            kw["action"] = "append"
            kw["metavar"] = "VALUE"
        elif opt.kind == "int":
            kw["type"] = int
        elif opt.kind == "switch":
            kw["choices"] = ("auto", "true", "false")
        group.add_argument(flag, **kw)


def load(args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults < file < environment < flags (< ``overrides``, for callers such as the
    demo that pin a value)."""
    env = os.environ if env is None else env
    path = find_file(getattr(args, "config", None), env)
    values = {o.dotted: o.default for o in OPTIONS}
    source = dict.fromkeys(values, "default")
    if path:
        for name, value in read_file(path).items():
            values[name] = _coerce(BY_NAME[name], value, path)
            source[name] = "file"
    for opt in OPTIONS:
        if opt.env in env:
            values[opt.dotted] = _coerce(opt, env[opt.env], opt.env)
            source[opt.dotted] = "env"
    for opt in OPTIONS:
        given = getattr(args, opt.dest, None) if args is not None else None
        if given is not None:
            values[opt.dotted] = _coerce(opt, given, opt.flag)
            source[opt.dotted] = "flag"
    for name, value in (overrides or {}).items():
        if name not in BY_NAME:
            raise ConfigError(f"unknown option {name!r}")
        values[name] = _coerce(BY_NAME[name], value, "override")
        source[name] = "override"
    cfg = Config(values, source, path)
    _check(cfg)
    return cfg


def _check(cfg: Config) -> None:
    if cfg["logs.store"] not in ("influxdb", "loki", "elasticsearch"):
        raise ConfigError(f"logs.store must be influxdb, loki or elasticsearch, "
                          f"got {cfg['logs.store']!r}")
    ports = [o.dotted for o in OPTIONS if o.kind == "int" and o.key.endswith("port")]
    seen: dict[int, str] = {}
    for name in ports:
        if cfg[name] in seen:
            raise ConfigError(f"{name} and {seen[cfg[name]]} are both port {cfg[name]}")
        seen[cfg[name]] = name


def dumps(values: Mapping[str, Any]) -> str:
    """``values`` (dotted names) as a TOML document ``read_file`` reads back."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        text = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    top = [f"{k} = {value(v)}" for k, v in values.items() if "." not in k]
    out = top[:]
    for section in SECTIONS:
        rows = [f"{k.partition('.')[2]} = {value(v)}" for k, v in values.items()
                if k.partition(".")[0] == section and "." in k]
        if rows:
            out += ["", f"[{section}]", *rows]
    return "\n".join(out) + "\n"
