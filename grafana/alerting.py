"""Grafana-managed alert rules, built with the SDK's alerting and expression builders and
written as Grafana's file-provisioning format (provisioning/alerting/rules.yml).

Every rule is: a query ``A`` whose series are one alert instance each (labels ``host`` and
``container_name`` for the container rules), ``B`` = reduce(A, last), ``C`` = threshold
on B (the condition), and extra reduced queries whose values the annotations quote (the
limit, the usage). Container rules query InfluxDB (InfluxQL 1.x datasource); the two
self-metric rules and "silent" query Prometheus: silent needs "state says running" minus
"sampled", a subtraction of one query's series from another's that PromQL's ``unless``
does and Grafana's expressions cannot. Annotations use ``.Labels``
and ``.Values`` (never ``$``), so provisioning's ``$VAR`` interpolation cannot touch them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from grafana_foundation_sdk.builders import alerting as ab
from grafana_foundation_sdk.builders import expr as eb
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models import alerting as am

from grafana import queries as q
from grafana.influx import EXPR, INFLUXQL, PROMETHEUS, Influx, ref

FOLDER = "boxwatch"
GROUP = "boxwatch-quota"
INTERVAL = "1m"
DETAIL = ("/d/boxwatch-container/boxwatch-container-detail?var-host={{ .Labels.host }}"
          "&var-container={{ .Labels.container_name }}")
HEALTH = "/d/boxwatch-health/boxwatch-health"
PROM_DETAIL = "/d/boxwatch-container/boxwatch-container-detail?var-container={{ .Labels.name }}"
# The collector exports container_state_running while a state file says running and
# container_last_seen only for a container it sampled: the same expression as
# prometheus/rules.yml's ContainerSilent.
SILENT = "container_state_running == 1 unless on(job, instance, id) container_last_seen"
Op = Literal["gt", "lt"]


@dataclass(frozen=True)
class RuleSpec:
    uid: str
    title: str
    query: str  # A: one series per alert instance
    op: Op
    threshold: float
    window: int  # seconds of data each query needs (relativeTimeRange.from)
    for_: str
    severity: str
    summary: str
    description: str
    extra: dict[str, str] = field(default_factory=dict)  # refId -> query, reduced to refId+"R"
    datasource: str = INFLUXQL
    panel: int = 0  # the detail dashboard's panel this rule belongs to (0: none)
    link: str = ""  # the annotations' dashboard link; default by datasource


NAME = "{{ .Labels.container_name }}"
WHERE = "{{ .Labels.host }}"


def _v(ref_id: str, fmt: str = '%.1f') -> str:
    return f'{{{{ printf "{fmt}" .Values.{ref_id}.Value }}}}'


def _bytes(ref_id: str) -> str:
    return f"{{{{ humanize1024 .Values.{ref_id}.Value }}}}B"


SPECS: list[RuleSpec] = [
    RuleSpec(
        "boxwatch-memory-near-limit", "Container memory near its limit", q.ALERT_MEM_RATIO,
        "gt", 90, 60, "2m", "warning",
        f"Container {NAME} uses {_v('B')}% of its memory limit",
        f"Container {NAME} on {WHERE} has a working set of {_bytes('WR')}, {_v('B')}% of its "
        f"limit of {_bytes('LR')}, for 2 minutes: it will be OOM-killed if it grows further.",
        {"W": q.ALERT_MEM_WS, "L": q.ALERT_MEM_LIMIT}, panel=2),
    RuleSpec(
        "boxwatch-oom-kill", "Container OOM-killed", q.ALERT_OOM, "gt", 0, 600, "0s", "critical",
        f"Container {NAME} was OOM-killed",
        f"The kernel's OOM killer killed a process of container {NAME} on {WHERE} "
        f"{_v('B', '%.0f')} time(s) in the last 5 minutes; peak memory {_bytes('PR')} of its "
        f"limit of {_bytes('LR')}.",
        {"L": q.ALERT_OOM_LIMIT, "P": q.ALERT_OOM_PEAK}, panel=2),
    RuleSpec(
        "boxwatch-cpu-throttled", "Container CPU-throttled", q.ALERT_THROTTLED, "gt", 25, 60, "5m",
        "warning", f"Container {NAME} is CPU-throttled in {_v('B')}% of periods",
        f"Container {NAME} on {WHERE} hit its CPU quota in {_v('B')}% of its scheduling periods "
        f"for 5 minutes (limit: {_v('QR', '%.2f')} CPUs).",
        {"Q": q.ALERT_QUOTA}, panel=3),
    RuleSpec(
        "boxwatch-pids-near-limit", "Container pids near pids.max", q.ALERT_PIDS, "gt", 90, 60,
        "1m", "warning", f"Container {NAME} uses {_v('B')}% of its pids limit",
        f"Container {NAME} on {WHERE} runs {_v('NR', '%.0f')} tasks of its pids.max of "
        f"{_v('MR', '%.0f')}: new processes and threads will fail to start.",
        {"N": q.ALERT_PIDS_CUR, "M": q.ALERT_PIDS_MAX}, panel=4),
    RuleSpec(
        "boxwatch-writable-layer-filling", "Container writable layer filling its filesystem",
        q.ALERT_LAYER_FILLING, "gt", 100, 3600, "10m", "warning",
        f"Container {NAME}'s writable layer would fill its filesystem within 4 hours",
        f"The writable layer of container {NAME} on {WHERE} is {_bytes('UR')} and grew in the "
        f"last hour at a rate that reaches {_v('B', '%.0f')}% of its filesystem "
        f"({_bytes('LR')}) within 4 hours: files the container writes outside its volumes "
        "will fail with ENOSPC, and so will every other writer on that filesystem.",
        {"U": q.ALERT_LAYER_USAGE, "L": q.ALERT_LAYER_LIMIT}, panel=10),
    RuleSpec(
        "boxwatch-restarting", "Container restarting", q.ALERT_RESTARTS, "gt", 3, 600, "0s",
        "warning", f"Container {NAME} restarted {_v('B', '%.0f')} times in 10 minutes",
        f"Container {NAME} on {WHERE} was restarted by its restart policy {_v('B', '%.0f')} times "
        "in the last 10 minutes (limit 3): it is crash-looping."),
    RuleSpec(
        "boxwatch-silent", "Container silent", SILENT, "gt", 0, 600, "2m", "warning",
        "No samples from running container {{ .Labels.name }} for 2m",
        "Container {{ .Labels.name }} ({{ .Labels.image }}) is running according to its state "
        "file but the collector on {{ .Labels.instance }} has taken no sample of it for 2m: its "
        "cgroup cannot be read (removed or broken behind the runtime's back) or its processes "
        "are gone while nothing updated the state.", datasource=PROMETHEUS, link=PROM_DETAIL),
    RuleSpec(
        "boxwatch-shipper-lag", "Shipper lagging", "max by (instance, path) "
                                                   "(boxwatch_shipper_lag_seconds)",
        "gt", 60, 300, "2m", "warning",
        "Shipper on {{ .Labels.instance }} is " + _v("B", "%.0f") + " s behind on {{ .Labels.path "
                                                                    "}}",
        "The log shipper on {{ .Labels.instance }} has not delivered lines of {{ .Labels.path }} "
        "written " + _v("B", "%.0f") + " s ago (limit 60 s): its sinks are slow or failing.",
        datasource=PROMETHEUS),
    RuleSpec(
        "boxwatch-collector-write-errors", "Collector write errors",
        "increase(boxwatch_collector_sink_write_errors_total[5m])", "gt", 0, 600, "0s", "warning",
        "Collector sink {{ .Labels.sink }} on {{ .Labels.instance }} failed " + _v("B", "%.0f")
        + " writes",
        "The collector's {{ .Labels.sink }} sink on {{ .Labels.instance }} failed "
        + _v("B", "%.0f") + " writes in the last 5 minutes (limit 0); it buffers the points and "
        "drops the oldest when full.", datasource=PROMETHEUS),
]


def _query(ref_id: str, text: str, uid: str, window: int) -> ab.Query:
    model: Any
    if uid == PROMETHEUS:
        model = (prometheus.Dataquery().expr(text).instant().ref_id(ref_id)
                 .datasource(ref(PROMETHEUS)))
    else:
        model = Influx(text, uid).ref_id(ref_id).alias("$tag_container_name").format("time_series")
    return (ab.Query(ref_id).datasource_uid(uid).model(model)
            .relative_time_range(am.RelativeTimeRange(from_val=window, to=0)))


def _expr(ref_id: str, model: Any) -> ab.Query:
    return (ab.Query(ref_id).datasource_uid(EXPR).model(model.ref_id(ref_id).datasource(ref(EXPR)))
            .relative_time_range(am.RelativeTimeRange(from_val=0, to=0)))


def _reduce(of: str) -> eb.TypeReduce:
    return eb.TypeReduce().expression(of).reducer("last").settings(
        eb.ExprTypeReduceSettings().mode("dropNN"))


def rule(spec: RuleSpec) -> ab.Rule:
    """The SDK rule of one spec: A, B = last(A), C = B op threshold, and the extras."""
    threshold = eb.TypeThreshold().expression("B").conditions([
        eb.ExprTypeThresholdConditions().evaluator(
            eb.ExprTypeThresholdConditionsEvaluator().type(spec.op).params([spec.threshold]))])
    data = [_query("A", spec.query, spec.datasource, spec.window), _expr("B", _reduce("A")),
            _expr("C", threshold)]
    for ref_id, text in spec.extra.items():
        data.append(_query(ref_id, text, spec.datasource, spec.window))
        data.append(_expr(ref_id + "R", _reduce(ref_id)))
    ref_ids = [d.build().ref_id for d in data]
    if len(set(ref_ids)) != len(ref_ids):
        raise ValueError(f"rule {spec.uid}: refIds must be unique: {ref_ids}")
    link = spec.link or (HEALTH if spec.datasource == PROMETHEUS else DETAIL)
    annotations = {"summary": spec.summary, "description": spec.description, "dashboard": link}
    if spec.panel:
        annotations |= {"__dashboardUid__": "boxwatch-container", "__panelId__": str(spec.panel)}
    return (ab.Rule(spec.title).uid(spec.uid).condition("C").queries(data).for_val(spec.for_)
            .no_data_state("OK").exec_err_state("Error").labels({"severity": spec.severity})
            .annotations(annotations))


def to_provisioning(r: am.Rule) -> dict[str, Any]:
    """An API-shaped SDK rule as a rules.yml entry (the keys Grafana's file format takes)."""
    api = r.to_json()
    out: dict[str, Any] = {"uid": api["uid"], "title": api["title"], "condition": api["condition"]}
    out["data"] = []
    for d in api["data"]:
        d = d.to_json() if hasattr(d, "to_json") else d
        model = d["model"].to_json() if hasattr(d["model"], "to_json") else d["model"]
        rtr = d["relativeTimeRange"]
        rtr = rtr.to_json() if hasattr(rtr, "to_json") else rtr
        out["data"].append({"refId": d["refId"], "relativeTimeRange": rtr,
                            "datasourceUid": d["datasourceUid"], "model": _plain(model)})
    annotations = dict(api.get("annotations") or {})
    dashboard_uid = annotations.pop("__dashboardUid__", None)
    panel_id = annotations.pop("__panelId__", None)
    if dashboard_uid:
        out["dashboardUid"] = dashboard_uid
        out["panelId"] = int(panel_id or 0)
    out |= {"noDataState": api["noDataState"], "execErrState": api["execErrState"],
            "for": api["for"], "annotations": annotations, "labels": api["labels"],
            "isPaused": False}
    return out


def _plain(value: Any) -> Any:
    """SDK models nested in dicts/lists -> plain data."""
    if hasattr(value, "to_json"):
        return _plain(value.to_json())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def document() -> dict[str, Any]:
    rules = [to_provisioning(rule(spec).build()) for spec in SPECS]
    return {"apiVersion": 1, "groups": [
        {"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": INTERVAL, "rules": rules}]}


def render() -> str:
    head = ("# GENERATED by grafana/build.py from grafana/alerting.py and grafana/queries.py: "
            "edit those, then run it.\n")
    return head + yaml.safe_dump(document(), sort_keys=False, width=100, allow_unicode=True)
