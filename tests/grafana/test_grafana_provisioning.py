"""The provisioning YAML uses only the keys Grafana documents for each file kind, names
every datasource by a fixed uid, and takes every address and secret from the environment.

Key sets are from Grafana's provisioning docs ("Provision Grafana": data sources, dashboard
providers; "Use configuration files to provision alerting resources": rules, contact
points, notification policies), Grafana 11.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

PROV = Path(__file__).resolve().parents[2] / "grafana" / "provisioning"
ENV = re.compile(r"^(Token )?\$__env\{[A-Z][A-Z0-9_]*\}$")

DATASOURCE_KEYS = {"name", "type", "uid", "access", "orgId", "url", "user", "database",
                   "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "jsonData",
                   "secureJsonData", "version", "editable"}
DATASOURCE_REQUIRED = {"name", "type", "uid", "access", "url"}
INFLUX_JSON = {"version", "dbName", "httpMode", "timeInterval", "organization",
               "defaultBucket", "tlsSkipVerify", "httpHeaderName1", "maxSeries"}
INFLUX_SECURE = {"password", "token", "httpHeaderValue1"}
PROVIDER_KEYS = {"name", "orgId", "folder", "folderUid", "type", "disableDeletion",
                 "updateIntervalSeconds", "allowUiUpdates", "options"}
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}
GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}
RULE_KEYS = {"uid", "title", "condition", "data", "dashboardUid", "panelId", "noDataState",
             "execErrState", "for", "annotations", "labels", "isPaused",
             "notification_settings"}
RULE_REQUIRED = {"uid", "title", "condition", "data"}
DATA_KEYS = {"refId", "relativeTimeRange", "datasourceUid", "model", "queryType"}
CONTACT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
WEBHOOK_SETTINGS = {"url", "httpMethod", "username", "password", "authorization_scheme",
                    "authorization_credentials", "maxAlerts", "message", "title"}
POLICY_KEYS = {"orgId", "receiver", "group_by", "matchers", "object_matchers",
               "mute_time_intervals", "active_time_intervals", "continue", "routes",
               "group_wait", "group_interval", "repeat_interval"}
STATES = {"noDataState": {"OK", "NoData", "Alerting", "KeepLast"},
          "execErrState": {"OK", "Error", "Alerting", "KeepLast"}}


def load(rel: str) -> dict[str, Any]:
    doc = yaml.safe_load((PROV / rel).read_text())
    assert doc["apiVersion"] == 1
    return doc


def test_datasources() -> None:
    doc = load("datasources/boxwatch.yml")
    assert set(doc) == {"apiVersion", "datasources"}
    by_uid = {}
    for ds in doc["datasources"]:
        assert set(ds) <= DATASOURCE_KEYS, set(ds) - DATASOURCE_KEYS
        assert DATASOURCE_REQUIRED <= set(ds)
        assert ENV.match(ds["url"]), ds["url"]
        for value in ds.get("secureJsonData", {}).values():
            assert ENV.match(value), f"{ds['uid']}: secret not from the environment: {value!r}"
        if ds["type"] == "influxdb":
            assert (
                set(ds["jsonData"]) <= INFLUX_JSON
                and set(ds.get("secureJsonData", {})) <= INFLUX_SECURE
            )
        by_uid[ds["uid"]] = ds
    assert set(by_uid) == {"boxwatch-influxdb", "boxwatch-influxdb-logs",
                           "boxwatch-influxdb2-influxql", "boxwatch-influxdb-flux", "boxwatch-loki",
                           "boxwatch-prometheus"}
    assert by_uid["boxwatch-influxdb"]["jsonData"] == {**by_uid["boxwatch-influxdb"]["jsonData"],
                                                       "version": "InfluxQL", "dbName": "boxwatch"}
    for uid in ("boxwatch-influxdb", "boxwatch-influxdb-logs"):  # InfluxDB 1.x with auth
        ds = by_uid[uid]
        assert ENV.match(ds["user"]), f"{uid}: user not from the environment"
        assert ENV.match(ds["secureJsonData"]["password"]), uid
        assert "password" not in ds and "password" not in ds["jsonData"], uid  # kept in clear
    v2 = by_uid["boxwatch-influxdb2-influxql"]
    assert v2["jsonData"]["httpHeaderName1"] == "Authorization"
    assert v2["secureJsonData"]["httpHeaderValue1"].startswith("Token $__env{")
    flux = by_uid["boxwatch-influxdb-flux"]
    assert flux["jsonData"]["version"] == "Flux" and "token" in flux["secureJsonData"]
    assert sum(1 for d in doc["datasources"] if d.get("isDefault")) == 1


def test_dashboard_provider() -> None:
    doc = load("dashboards/boxwatch.yml")
    assert set(doc) == {"apiVersion", "providers"}
    for p in doc["providers"]:
        assert set(p) <= PROVIDER_KEYS and set(p["options"]) <= PROVIDER_OPTIONS
        assert p["type"] == "file" and p["options"]["path"]


def test_alert_rules() -> None:
    doc = load("alerting/rules.yml")
    assert set(doc) == {"apiVersion", "groups"}
    for group in doc["groups"]:
        assert set(group) == GROUP_KEYS
        assert re.fullmatch(r"\d+[smh]", group["interval"])
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS and RULE_REQUIRED <= set(rule), set(rule) - RULE_KEYS
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            for key, allowed in STATES.items():
                assert rule[key] in allowed
            refs = [d["refId"] for d in rule["data"]]
            assert rule["condition"] in refs and len(refs) == len(set(refs))
            for d in rule["data"]:
                assert set(d) <= DATA_KEYS and {"refId", "datasourceUid", "model"} <= set(d)
                assert set(d["relativeTimeRange"]) == {"from", "to"}
                assert d["model"]["refId"] == d["refId"]
            assert "$" not in json.dumps(rule["annotations"])


def test_contact_point_and_policy() -> None:
    cp = load("alerting/contactpoints.yml")
    assert set(cp) == {"apiVersion", "contactPoints"}
    receivers = set()
    for point in cp["contactPoints"]:
        assert set(point) <= CONTACT_KEYS
        for r in point["receivers"]:
            assert set(r) <= RECEIVER_KEYS and r["type"] == "webhook"
            assert set(r["settings"]) <= WEBHOOK_SETTINGS
            assert ENV.match(r["settings"]["url"])
            assert ENV.match(r["settings"]["authorization_credentials"])
        receivers.add(point["name"])
    pol = load("alerting/policies.yml")
    assert set(pol) == {"apiVersion", "policies"}

    def walk(node: dict[str, Any]) -> None:
        assert set(node) <= POLICY_KEYS, set(node) - POLICY_KEYS
        assert node.get("receiver", "boxwatch-webhook") in receivers
        for m in node.get("object_matchers", []):
            assert len(m) == 3 and m[1] in {"=", "!=", "=~", "!~"}
        for child in node.get("routes", []):
            walk(child)

    for policy in pol["policies"]:
        walk(policy)
