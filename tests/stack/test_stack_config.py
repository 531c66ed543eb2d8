"""The stack's configuration: defaults < boxwatch.toml < BOXWATCH_* < flags, one name per
option in each place, errors that carry the bad value, and boxwatch.toml.example in sync
with the option table."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from boxwatch import config
from boxwatch.config import OPTIONS, ConfigError
from boxwatch.stack import plan

REPO = Path(__file__).resolve().parents[2]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_flags(parser)
    return parser.parse_args(argv)


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    path = tmp_path / "boxwatch.toml"
    path.write_text('state_dir = "/srv/bw"\nroots = ["/a"]\n[influxdb]\nport = 1111\n'
                    'retention = "30d"\n[collector]\nport = 2222\n')
    env = {"BOXWATCH_INFLUXDB_PORT": "3333", "BOXWATCH_ROOTS": "/b,/c"}
    cfg = config.load(parse(["--config", str(path), "--influxdb-port", "4444"]), env)
    assert cfg["influxdb.port"] == 4444 and cfg.source["influxdb.port"] == "flag"
    assert cfg["roots"] == ["/b", "/c"] and cfg.source["roots"] == "env"
    assert cfg["collector.port"] == 2222 and cfg.source["collector.port"] == "file"
    assert cfg["influxdb.retention"] == "30d" and cfg["state_dir"] == "/srv/bw"
    assert cfg["shipper.port"] == 9181 and cfg.source["shipper.port"] == "default"
    flags = config.load(parse(["--config", str(path), "--root", "/x", "--root", "/y"]), {})
    assert flags["roots"] == ["/x", "/y"]
    via_env = config.load(parse([]), {"BOXWATCH_CONFIG": str(path)})
    assert via_env.path == str(path) and via_env["influxdb.port"] == 1111


def test_errors_name_the_source_and_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BOXWATCH_SHIPPER_PORT: shipper.port must be a "
                                          "number, got 'abc'"):
        config.load(parse([]), {"BOXWATCH_SHIPPER_PORT": "abc"})
    with pytest.raises(ConfigError, match="must be a port .* got 70000"):
        config.load(parse(["--collector-port", "70000"]), {})
    with pytest.raises(ConfigError, match="collector.port and influxdb.port are both port 8086"):
        config.load(parse(["--collector-port", "8086"]), {})
    bad = tmp_path / "b.toml"
    bad.write_text("[influxdb]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'influxdb.prot'"):
        config.load(parse(["--config", str(bad)]), {})
    with pytest.raises(ConfigError, match="no such config file: '/nope.toml'"):
        config.load(parse(["--config", "/nope.toml"]), {})
    with pytest.raises(ConfigError, match="logs.store must be .* got 'splunk'"):
        config.load(parse([]), {"BOXWATCH_LOGS_STORE": "splunk"})


def test_dumps_reads_back() -> None:
    values = {o.dotted: o.default for o in OPTIONS}
    values["roots"] = ['/with "quote"', "/b"]
    doc = tomllib.loads(config.dumps(values))
    assert doc["roots"] == values["roots"] and doc["influxdb"]["port"] == 8086


def test_the_example_file_documents_every_option_with_its_default() -> None:
    example = REPO / "boxwatch.toml.example"
    text = example.read_text()
    uncommented = "\n".join(line[2:] if line.startswith("# ") and "=" in line and
                            not line.startswith("# #") else line
                            for line in text.splitlines())
    doc = tomllib.loads(uncommented)
    flat = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    assert set(flat) == {o.dotted for o in OPTIONS}
    for opt in OPTIONS:
        if opt.dotted != "prometheus.rules":
            assert flat[opt.dotted] == opt.default, opt.dotted
        assert opt.env in text, f"{opt.env} not mentioned"
    config.read_file(str(example))  # the file as shipped (all commented) loads


def test_plan_wires_the_parts_together(tmp_path: Path) -> None:
    cfg = config.load(parse(["--state-dir", str(tmp_path), "--root", "/r",
                             "--prometheus-enabled", "true", "--alertmanager-enabled", "true",
                             "--host", "node-7"]), {})
    p = plan.build(cfg, python="/py")
    names = [c.name for c in p.components]
    assert names == ["influxd", "collector", "shipper", "prometheus", "alertmanager", "web"]
    collector, shipper = p.components[1].argv, p.components[2].argv
    assert collector[:4] == ["/py", "-m", "boxwatch.cli", "collector"]
    assert "--alert-webhook" in collector and \
        collector[collector.index("--alert-webhook") + 1] == "http://127.0.0.1:9093/api/v2/alerts"
    assert "influxdb-v1=http://127.0.0.1:8086" in shipper and "node-7" in shipper
    for argv in (collector, shipper, p.components[-1].argv):  # one host name on every tag
        assert argv[argv.index("--host") + 1] == "node-7"
    assert f"{tmp_path}/shipper/registry.json" in shipper
    prom = p.files[f"{tmp_path}/prometheus/prometheus.yml"]
    assert '"127.0.0.1:9180"' in prom and '"127.0.0.1:9181"' in prom and "rules.yml" in prom
    off = config.load(parse(["--state-dir", str(tmp_path), "--alertmanager-enabled", "false",
                             "--alertmanager-webhook", "http://127.0.0.1:1/hook"]), {})
    p2 = plan.build(off)
    assert p2.skipped["alertmanager"] == "disabled"
    assert "http://127.0.0.1:1/hook" in p2.components[1].argv  # collector posts directly
    web = p.components[-1]
    assert web.argv[:4] == ["/py", "-m", "boxwatch.cli", "web"] and web.port == 9200
    for flag, value in (("--listen", "127.0.0.1:9200"), ("--root", "/r"),
                        ("--collector-url", "http://127.0.0.1:9180"),
                        ("--influx-url", "http://127.0.0.1:8086"),
                        ("--alertmanager-url", "http://127.0.0.1:9093")):
        assert web.argv[web.argv.index(flag) + 1] == value, flag
    assert "--enable-exec" not in web.argv and "--auth-token-file" not in web.argv
    assert p2.components[-1].argv[p2.components[-1].argv.index("--alertmanager-url") + 1] == ""
    no_web = config.load(parse(["--state-dir", str(tmp_path), "--web-enabled", "false"]), {})
    assert plan.build(no_web).skipped["web"] == "disabled"
