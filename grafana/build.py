"""Generates grafana/dashboards/*.json with grafana-foundation-sdk (pinned in pyproject's
``grafana`` extra) and grafana/provisioning/alerting/rules.yml (grafana/alerting.py).

    .venv/bin/python grafana/build.py          # rewrite the files
    .venv/bin/python grafana/build.py --check  # exit 1 if a file differs (what CI runs)

Dashboards (stable uids; links between them use the uids):
``boxwatch-overview``, ``boxwatch-container``, ``boxwatch-logs``, ``boxwatch-health``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `grafana.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import logs, loki, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import VizLegendOptions
from grafana_foundation_sdk.builders.expr import TypeMath
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.common import (
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)

from grafana import alerting
from grafana import queries as q
from grafana.influx import EXPR, INFLUXQL, INFLUXQL_LOGS, LOKI, PROMETHEUS, Influx, ref, register

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
RULES = HERE / "provisioning" / "alerting" / "rules.yml"
UIDS = {"overview": "boxwatch-overview", "container": "boxwatch-container",
        "logs": "boxwatch-logs", "health": "boxwatch-health"}
TAGS = ["boxwatch"]


# -- small helpers ----------------------------------------------------------------------


def influx(query: str, ref_id: str = "A", alias: str = "$tag_container_name $col",
           fmt: str = "time_series", uid: str = INFLUXQL) -> Influx:
    return Influx(query, uid).ref_id(ref_id).alias(alias).format(fmt)


def prom(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return (prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id)
            .datasource(ref(PROMETHEUS)).range())


def lokiq(expr: str, ref_id: str = "A", legend: str = "") -> loki.Dataquery:
    out = loki.Dataquery().expr(expr).ref_id(ref_id).datasource(ref(LOKI))
    return out.legend_format(legend) if legend else out


def series(title: str, unit: str, targets: Sequence[Any], *, pid: int, w: int = 12, h: int = 8,
           desc: str = "", bars: bool = False, stack: bool = False,
           max_val: float | None = None) -> timeseries.Panel:
    panel = (timeseries.Panel().id(pid).title(title).description(desc).unit(unit).span(w)
             .height(h).targets(list(targets))
             .legend(VizLegendOptions().display_mode(LegendDisplayMode.TABLE)
                     .placement(LegendPlacement.BOTTOM).show_legend(True)
                     .calcs(["lastNotNull", "max"])))
    kinds = {t.build().datasource.type_val for t in targets}
    if len(kinds) == 1:  # mixed (queries + expressions): each target names its own
        panel = panel.datasource(_ds(targets))
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    if stack:
        panel = panel.stacking(dash_stacking(StackingMode.NORMAL))
    if max_val is not None:
        panel = panel.max(max_val)
    return panel


def dash_stacking(mode: StackingMode) -> Any:
    from grafana_foundation_sdk.builders.common import StackingConfig

    return StackingConfig().mode(mode)


def _ds(targets: Sequence[Any]) -> dm.DataSourceRef:
    first = targets[0].build()
    return first.datasource


def limit_lines(*names: str) -> list[dm.DynamicConfigValue]:
    """Field overrides that draw a limit as a dashed red line."""
    return [
        dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


def variables(builder: dash.Dashboard, host_q: str, container_q: str, uid: str = INFLUXQL,
              multi: bool = True) -> dash.Dashboard:
    """host, container (multi on overview), interval."""
    host = (dash.QueryVariable("host").label("Host").query(host_q).datasource(ref(uid))
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).include_all(True).all_value(".*")
            .multi(True).sort(dm.VariableSort.ALPHABETICAL_ASC))
    container = (dash.QueryVariable("container").label("Container").query(container_q)
                 .datasource(ref(uid)).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
                 .multi(multi).include_all(multi).all_value(".*")
                 .sort(dm.VariableSort.ALPHABETICAL_ASC))
    interval = (dash.IntervalVariable("interval").label("Interval")
                .values("10s,30s,1m,5m,15m,1h").auto(True).min_interval("10s").step_count(100)
                .current(dm.VariableOption(text="auto", value="$__auto_interval_interval")))
    return builder.with_variable(host).with_variable(container).with_variable(interval)


def base(key: str, title: str, desc: str) -> dash.Dashboard:
    links = [dash.DashboardLink("boxwatch").type(dm.DashboardLinkType.DASHBOARDS).tags(TAGS)
             .as_dropdown(True).include_vars(True).keep_time(True)]
    return (dash.Dashboard(title).uid(UIDS[key]).description(desc).tags(TAGS).editable()
            .time("now-1h", "now").refresh("30s").timezone("browser").links(links))


DETAIL_LINK = ("/d/boxwatch-container/boxwatch-container-detail?var-host=${__field.labels.host}"
               "&var-container=${__field.labels.container_name}&${__url_time_range}")


# -- dashboards -------------------------------------------------------------------------


def overview() -> dash.Dashboard:
    d = variables(base("overview", "boxwatch: containers overview",
                       "Which container is hot, near its limit, throttled or dying."),
                  q.VAR_HOST, q.VAR_CONTAINER)
    running = (stat.Panel().id(1).title("Running containers").span(4).height(5)
               .targets([influx(q.RUNNING, alias="running")]).datasource(ref(INFLUXQL)))
    d = d.with_panel(running)
    d = d.with_panel(series("Containers' CPU by host", "cores",
                            [influx(q.HOST_CPU, alias="$tag_host")], pid=2, w=10, h=5))
    d = d.with_panel(series("Containers' memory by host", "bytes",
                            [influx(q.HOST_MEM, alias="$tag_host")], pid=3, w=10, h=5))
    d = d.with_panel(series("CPU % (100 = one core)", "percent",
                            [influx(q.CPU_PERCENT, alias="$tag_container_name")], pid=4,
                            desc="Cumulative cpu time (ns) per second, per container."))
    quota = series("CPU % of quota", "percent", [
        influx(q.CPU_USED_CORES, "A", "$tag_container_name").hide(),
        influx(q.CPU_QUOTA_CORES, "B", "$tag_container_name").hide(),
        TypeMath().ref_id("C").expression("$A / $B * 100").datasource(ref(EXPR)),
    ], pid=5,
        desc="Used cores over --cpus (quota/period); containers without a quota are left out.")
    d = d.with_panel(quota)
    d = d.with_panel(series("Memory working set vs limit", "bytes", [influx(q.MEM_VS_LIMIT)], pid=6)
                     .override_by_regexp(".* limit$", limit_lines()))
    d = d.with_panel(series("Network rx / tx", "Bps", [influx(q.NET)], pid=7))
    d = d.with_panel(series("Block I/O read / write", "Bps", [influx(q.BLKIO)], pid=8))
    d = d.with_panel(series("CPU throttled % of periods", "percent",
                            [influx(q.THROTTLED, alias="$tag_container_name")], pid=9,
                            desc="Periods in which the container hit its CPU quota."))
    d = d.with_panel(series("OOM kills", "short",
                            [influx(q.OOM_KILLS, alias="$tag_container_name")], pid=10, bars=True))
    d = d.with_panel(series("Restarts", "short", [influx(q.RESTARTS, alias="$tag_container_name")],
                            pid=11, bars=True))
    near = (table.Panel().id(12).title("Containers near a limit").span(24).height(8)
            .targets([influx(q.NEAR_MEM, "A", "", "table"), influx(q.NEAR_PIDS, "B", "", "table")])
            .datasource(ref(INFLUXQL)).unit("percent")
            .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
            .with_transformation(dm.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "memory %", "desc": True}]}))
            .data_links([dash.DashboardLink("Container detail").url(DETAIL_LINK)]))
    return d.with_panel(near)


def container() -> dash.Dashboard:
    d = variables(base("container", "boxwatch: container detail",
                       "Everything about one container: usage against its limits, events, logs."),
                  q.VAR_HOST, q.VAR_CONTAINER, multi=False)
    d = d.annotation(dash.AnnotationQuery().name("Container events").datasource(ref(INFLUXQL))
                     .enable(True).icon_color("orange"))
    cpu = series("CPU cores (quota as a line)", "cores", [
        influx(q.CPU_USED_CORES, "A", "used"), influx(q.CPU_QUOTA_CORES, "B", "quota"),
    ], pid=1).override_by_name("quota", limit_lines())
    d = d.with_panel(cpu)
    d = d.with_panel(
        series(
            "Memory (limit as a line)", "bytes", [influx(q.MEM_DETAIL, alias="$col")], pid=2
        ).override_by_name("limit", limit_lines())
    )
    d = d.with_panel(series("CPU throttled % of periods", "percent",
                            [influx(q.THROTTLED, alias="throttled")], pid=3, max_val=100))
    d = d.with_panel(series("Tasks (pids.max as a line)", "short",
                            [influx(q.PIDS_DETAIL, alias="$col")], pid=4)
                     .override_by_name("pids.max", limit_lines()))
    d = d.with_panel(series("Network rx / tx", "Bps", [influx(q.NET, alias="$col")], pid=5))
    d = d.with_panel(
        series("Block I/O read / write", "Bps", [influx(q.BLKIO, alias="$col")], pid=6)
    )
    d = d.with_panel(disk_panel())
    d = d.with_panel(series("Pressure (PSI avg10)", "percent",
                            [influx(q.PSI, alias="$tag_resource $col")], pid=7, w=24))
    d = d.with_panel(table.Panel().id(8).title("Events (start, die, oom_kill, restart)")
                     .span(24).height(6).targets([influx(q.EVENTS, fmt="table")])
                     .datasource(ref(INFLUXQL)))
    log_panel = (logs.Panel().id(9).title("Logs").span(24).height(12)
                 .targets([influx(q.LOGS_INFLUX, fmt="logs", uid=INFLUXQL_LOGS)])
                 .datasource(ref(INFLUXQL_LOGS)).show_time(True).wrap_log_message(True)
                 .sort_order(dm_sort_desc()))
    return d.with_panel(log_panel)


def disk_panel() -> timeseries.Panel:
    """Disk: the writable layer's size (what ``docker ps -s`` shows), its share of its
    filesystem on the right axis, and the block I/O rates on the right too."""
    right = [dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right")]
    return (series("Disk: writable layer and fs I/O", "bytes", [
        influx(q.LAYER, "A", "$col"), influx(q.LAYER_FS_PERCENT, "B", "$col"),
        influx(q.BLKIO, "C", "fs $col"),
    ], pid=10, w=24, desc="The container's writable layer (its overlay upperdir, as docker ps "
                         "-s counts it; walked every --fs-interval, 1m) and the block I/O "
                         "it does; the alert fires when the layer would fill its filesystem "
                         "within 4 hours at the last hour's rate.")
            .override_by_name("% of its filesystem", [
                *right, dm.DynamicConfigValue(id_val="unit", value="percent")])
            .override_by_name("fs read", [*right, dm.DynamicConfigValue(id_val="unit",
                                                                         value="Bps")])
            .override_by_name("fs write", [*right, dm.DynamicConfigValue(id_val="unit",
                                                                          value="Bps")]))


def dm_sort_desc() -> Any:
    from grafana_foundation_sdk.models.common import LogsSortOrder

    return LogsSortOrder.DESCENDING


LOKI_SEL = 'host=~"$host", container_name=~"$container", stream=~"$stream"'


def logs_dashboard() -> dash.Dashboard:
    d = variables(base("logs", "boxwatch: logs",
                       "Search container logs by container, stream and text; volume over time. "
                       "Loki and InfluxDB (measurement container_logs) variants."),
                  q.VAR_LOG_HOST, q.VAR_LOG_CONTAINER, uid=INFLUXQL_LOGS)
    d = d.with_variable(dash.CustomVariable("stream").label("Stream").values("stdout,stderr")
                        .multi(True).include_all(True).all_value(".*"))
    d = d.with_variable(dash.TextBoxVariable("search").label("Search").default_value(""))
    d = d.with_row(dash.Row("Loki"))
    d = d.with_panel(series("Log volume by container (Loki)", "short", [lokiq(
        f"sum by (container_name) (count_over_time({{{LOKI_SEL}}} |= `$search` [$__auto]))",
        legend="{{container_name}}")], pid=2, w=24, h=6, bars=True, stack=True))
    d = d.with_panel(logs.Panel().id(3).title("Logs (Loki)").span(24).height(14)
                     .targets([lokiq(f"{{{LOKI_SEL}}} |= `$search`")]).datasource(ref(LOKI))
                     .show_time(True).wrap_log_message(True).sort_order(dm_sort_desc()))
    d = d.with_row(dash.Row("InfluxDB"))
    d = d.with_panel(series("Log volume by container (InfluxDB)", "short",
                            [influx(q.LOG_VOLUME, alias="$tag_container_name", uid=INFLUXQL_LOGS)],
                            pid=5, w=24, h=6, bars=True, stack=True))
    return d.with_panel(logs.Panel().id(6).title("Logs (InfluxDB)").span(24).height(14)
                        .targets([influx(q.LOG_SEARCH, fmt="logs", uid=INFLUXQL_LOGS)])
                        .datasource(ref(INFLUXQL_LOGS)).show_time(True).wrap_log_message(True)
                        .sort_order(dm_sort_desc()))


# (title, unit, [(PromQL, legend)]) of the health dashboard, collector then shipper
HEALTH: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Collector: samples / s", "short",
     [("sum by (instance) (rate(boxwatch_collector_samples_total[$__rate_interval]))",
       "{{instance}}")]),
    ("Collector: containers sampled", "short",
     [("boxwatch_collector_containers", "{{instance}}")]),
    ("Collector: read errors and vanished groups / s", "short",
     [("rate(boxwatch_collector_read_errors_total[$__rate_interval])", "errors {{instance}}"),
      ("rate(boxwatch_collector_gone_total[$__rate_interval])", "gone {{instance}}")]),
    ("Collector: scan and read duration", "s",
     [("boxwatch_collector_scan_duration_seconds", "scan {{instance}}"),
      ("boxwatch_collector_read_duration_seconds", "read {{instance}}")]),
    ("Collector sinks: written points / s and write errors", "short",
     [("rate(boxwatch_collector_sink_written_total[$__rate_interval])",
       "written {{sink}} {{instance}}"),
      ("increase(boxwatch_collector_sink_write_errors_total[$__rate_interval])",
       "errors {{sink}} {{instance}}")]),
    ("Collector sinks: buffered and dropped points", "short",
     [("boxwatch_collector_sink_buffered_points", "buffered {{sink}} {{instance}}"),
      ("increase(boxwatch_collector_sink_dropped_points_total[$__rate_interval])",
       "dropped {{sink}} {{instance}}")]),
    ("Shipper: lines read / s", "short",
     [("sum by (instance) (rate(boxwatch_shipper_lines_read_total[$__rate_interval]))",
       "{{instance}}")]),
    ("Shipper: lag behind the newest line", "s",
     [("max by (instance) (boxwatch_shipper_lag_seconds)", "{{instance}}")]),
    ("Shipper: rejected, retried and unparsable lines / s", "short",
     [("sum by (instance, sink) (rate(boxwatch_shipper_rejected_total[$__rate_interval]))",
       "rejected {{sink}} {{instance}}"),
      ("sum by (instance, sink) (rate(boxwatch_shipper_retried_total[$__rate_interval]))",
       "retried {{sink}} {{instance}}"),
      ("rate(boxwatch_shipper_parse_errors_total[$__rate_interval])",
       "parse errors {{instance}}")]),
    ("Shipper: bytes buffered (read, not yet acknowledged)", "bytes",
     [("boxwatch_shipper_buffer_bytes", "{{instance}}")]),
]


def health() -> dash.Dashboard:
    d = base("health", "boxwatch: health",
             "The collector's and the shipper's own metrics (Prometheus).")
    for i, (title, unit, exprs) in enumerate(HEALTH, start=1):
        targets = [prom(e, legend, chr(ord("A") + k)) for k, (e, legend) in enumerate(exprs)]
        d = d.with_panel(series(title, unit, targets, pid=i))
    return d


BUILDERS = {"overview": overview, "container": container, "logs": logs_dashboard,
            "health": health}


# -- output -----------------------------------------------------------------------------


def to_dict(builder: dash.Dashboard) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for anno in doc.get("annotations", {}).get("list", []):
        if anno.get("name") == "Container events":  # InfluxQL annotations: the SDK lacks the shape
            anno["target"] = {
                "refId": "Anno",
                "query": q.EVENTS.replace(' AND "host" =~ /^$host$/', ""),
                "rawQuery": True,
                "resultFormat": "table",
            }
            anno["textColumn"] = "message"
            anno["tagsColumn"] = "action"
    return doc


def render() -> dict[Path, str]:
    """Every generated file's path and text."""
    register()
    out = {DASHBOARDS / f"{key}.json": json.dumps(to_dict(fn()), indent=2, sort_keys=True) + "\n"
           for key, fn in BUILDERS.items()}
    out[RULES] = alerting.render()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate boxwatch's Grafana dashboards and rules."
    )
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
