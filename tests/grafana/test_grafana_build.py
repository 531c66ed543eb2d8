"""The generated dashboards and rules: in sync with grafana/build.py, readable by the
SDK's models without loss, stable uids, the variables and datasources they promise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import alerting as am
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel

from grafana import build
from grafana.influx import EXPR, register

REPO = Path(__file__).resolve().parents[2]
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "boxwatch.yml"
PANEL_TYPES = {"timeseries", "stat", "table", "logs", "row"}
# Loki labels the shipper sets (shipper/sinks/loki.py): nothing else may be selected on.
LOKI_LABELS = {"host", "container_name", "stream"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(build.DASHBOARDS.glob("*.json"))}


def datasource_uids() -> set[str]:
    return {d["uid"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}


def test_files_are_what_build_generates() -> None:
    rendered = build.render()
    assert set(rendered) == {*build.DASHBOARDS.glob("*.json"), build.RULES}
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path} is stale: run .venv/bin/python grafana/build.py"
    proc = subprocess.run([sys.executable, "grafana/build.py", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_mode_notices_a_hand_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path, text in build.render().items():
        (tmp_path / path.name).write_text(text)
    (tmp_path / "overview.json").write_text("{}\n")
    monkeypatch.setattr(build, "DASHBOARDS", tmp_path)
    monkeypatch.setattr(build, "RULES", tmp_path / "rules.yml")
    assert build.main(["--check"]) == 1
    assert build.main([]) == 0 and build.main(["--check"]) == 0
    assert json.loads((tmp_path / "overview.json").read_text())["uid"] == "boxwatch-overview"


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}" for k in set(a) - set(b)]  # keys the models add are defaults
        for k in set(a) & set(b):
            out += _diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path]


def test_sdk_models_read_every_dashboard_without_loss() -> None:
    register()
    for name, doc in dashboards().items():
        model = Dashboard.from_json(doc)
        back = json.loads(json.dumps(model, cls=JSONEncoder))
        lost = _diff(doc, back)
        # InfluxQL annotations keep their query in target.query/textColumn/tagsColumn, which
        # the SDK's AnnotationTarget does not model; nothing else may differ.
        assert all(p.startswith("/annotations/list[0]") for p in lost), (name, lost)
        assert model.uid == build.UIDS[name] and model.title and model.schema_version >= 39
        for panel in model.panels or []:
            assert isinstance(panel, Panel | RowPanel)
            assert panel.type_val in PANEL_TYPES, panel.type_val
            g = panel.grid_pos
            assert g is not None and g.w > 0 and g.h > 0 and g.x + g.w <= 24, (name, panel.title)
            for target in getattr(panel, "targets", None) or []:
                assert not isinstance(target, UnknownDataquery), (name, panel.title, target.data)


def test_uids_ids_and_datasources_are_stable_and_provisioned() -> None:
    uids = datasource_uids() | {EXPR}
    for name, doc in dashboards().items():
        assert doc["uid"] == build.UIDS[name] and re.fullmatch(r"[a-z0-9-]{8,40}", doc["uid"])
        ids = [p["id"] for p in doc["panels"] if p["type"] != "row"]
        assert len(ids) == len(set(ids)), (name, ids)
        for panel in doc["panels"]:
            refs = [t.get("refId") for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), (name, panel["title"], refs)
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids, (name, panel["title"])


def test_variables_host_container_interval() -> None:
    docs = dashboards()
    for name in ("overview", "container", "logs"):
        names = {v["name"]: v for v in docs[name]["templating"]["list"]}
        assert {"host", "container", "interval"} <= set(names), name
        assert names["interval"]["type"] == "interval"
    assert {v["name"]: v["multi"] for v in docs["overview"]["templating"]["list"]}["container"]
    assert not {v["name"]: v["multi"] for v in docs["container"]["templating"]["list"]}["container"]
    # every panel query filters by the variables it is shown under
    for name in ("overview", "container"):
        for panel in docs[name]["panels"]:
            for t in panel.get("targets", []):
                if t["datasource"]["type"] == "influxdb" and \
                        "container_name" in t["query"].rpartition("GROUP BY")[2]:
                    assert "/^$container$/" in t["query"] and "/^$host$/" in t["query"], t


def test_loki_queries_select_only_the_shippers_labels() -> None:
    found = 0
    for panel in dashboards()["logs"]["panels"]:
        for t in panel.get("targets", []):
            if t["datasource"]["type"] != "loki":
                continue
            found += 1
            selectors = re.findall(r"\{([^{}]*=~?[^{}]*)\}", t["expr"])
            labels = {m.split("=")[0].strip() for s in selectors for m in s.split(",")}
            assert labels and labels <= LOKI_LABELS, labels
    assert found == 2


def test_rules_through_the_sdk_alerting_models() -> None:
    doc = yaml.safe_load(build.RULES.read_text())
    rules = doc["groups"][0]["rules"]
    assert {r["uid"] for r in rules} == {
        "boxwatch-memory-near-limit", "boxwatch-oom-kill", "boxwatch-cpu-throttled",
        "boxwatch-pids-near-limit", "boxwatch-restarting", "boxwatch-silent",
        "boxwatch-shipper-lag", "boxwatch-collector-write-errors",
        "boxwatch-writable-layer-filling"}
    uids = datasource_uids() | {EXPR}
    for r in rules:
        api = {**r, "folderUID": "boxwatch", "ruleGroup": "boxwatch-quota", "orgID": 1}
        model = am.Rule.from_json(api)
        assert model.condition == "C" and model.title == r["title"]
        refs = [d.ref_id for d in model.data]
        assert len(refs) == len(set(refs)) and {"A", "B", "C"} <= set(refs), refs
        assert all(d.datasource_uid in uids for d in model.data)
        ann = r["annotations"]
        assert {"summary", "description", "dashboard"} <= set(ann)
        assert "$" not in json.dumps(ann), "annotations must not use $ (provisioning interpolates)"
        for text in (ann["summary"], ann["description"]):
            for ref in re.findall(r"\.Values\.(\w+)\.Value", text):
                assert ref in refs, (r["uid"], ref)
        if r["data"][0]["datasourceUid"] != "boxwatch-prometheus":
            assert "{{ .Labels.container_name }}" in ann["summary"]
            assert "/d/boxwatch-container/" in ann["dashboard"]
            assert "container_name" in ann["dashboard"]
