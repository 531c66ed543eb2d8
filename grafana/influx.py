"""The InfluxDB query type the Grafana SDK lacks, registered with its runtime so
``Dashboard.from_json`` reads our panels' targets back as typed queries (not an unknown
bag), and the datasource uids every dashboard and rule refers to.

The JSON is what Grafana's InfluxDB datasource stores: ``query`` holds raw InfluxQL
(``rawQuery: true``) or Flux, ``resultFormat`` is ``time_series``, ``table`` or ``logs``,
``alias`` names series (``$tag_container_name``).
"""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

# Fixed datasource uids (grafana/provisioning/datasources/boxwatch.yml).
INFLUXQL = "boxwatch-influxdb"  # InfluxDB 1.x, InfluxQL, database "boxwatch" (metrics)
INFLUXQL_LOGS = "boxwatch-influxdb-logs"  # InfluxDB 1.x, InfluxQL, database "logs" (shipper)
INFLUXQL_V2 = "boxwatch-influxdb2-influxql"  # InfluxDB 2.x through its DBRP mapping
FLUX = "boxwatch-influxdb-flux"  # InfluxDB 2.x, Flux, bucket "boxwatch"
LOKI = "boxwatch-loki"
PROMETHEUS = "boxwatch-prometheus"
EXPR = "__expr__"  # Grafana's server-side expressions

TYPE = "influxdb"
FORMATS = ("time_series", "table", "logs")


def ref(uid: str) -> DataSourceRef:
    """A datasource reference by uid (the plugin type follows from the uid)."""
    kind = {LOKI: "loki", PROMETHEUS: "prometheus", EXPR: "__expr__"}.get(uid, TYPE)
    return DataSourceRef(type_val=kind, uid=uid)


class InfluxQuery(cogvariants.Dataquery):
    """One InfluxDB target: raw InfluxQL or Flux text."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: str = "time_series",
                 alias: str = "", datasource: DataSourceRef | None = None,
                 raw_query: bool = True, hide: bool = False) -> None:
        if result_format not in FORMATS:
            raise ValueError(f"InfluxDB resultFormat must be one of {FORMATS}: {result_format!r}")
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource
        self.raw_query = raw_query
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id, "query": self.query,
                                  "rawQuery": self.raw_query, "resultFormat": self.result_format}
        if self.alias:
            out["alias"] = self.alias
        if self.datasource is not None:
            out["datasource"] = self.datasource.to_json()
        if self.hide:
            out["hide"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            ref_id=str(data.get("refId", "A")), query=str(data.get("query", "")),
            result_format=str(data.get("resultFormat", "time_series")),
            alias=str(data.get("alias", "")),
            datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
            raw_query=bool(data.get("rawQuery", True)), hide=bool(data.get("hide", False)),
        )


class Influx(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an ``InfluxQuery`` (the SDK's builders take builders, not models)."""

    def __init__(self, query: str, uid: str = INFLUXQL) -> None:
        self._internal = InfluxQuery(query=query, datasource=ref(uid))

    def build(self) -> InfluxQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def hide(self) -> Self:
        """Run it (for an expression) but do not draw it."""
        self._internal.hide = True
        return self

    def format(self, result_format: str) -> Self:
        if result_format not in FORMATS:
            raise ValueError(f"InfluxDB resultFormat must be one of {FORMATS}: {result_format!r}")
        self._internal.result_format = result_format
        return self


def register() -> None:
    """The SDK's own query and panel types, plus ``datasource.type == "influxdb"``."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins

    register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=TYPE, from_json_hook=InfluxQuery.from_json))
