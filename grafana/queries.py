"""Every InfluxQL statement the dashboards and alert rules run, in one place, over the
collector's measurements (``collector/lineproto.py``) and the shipper's ``container_logs``.

Dashboard statements use Grafana's macros and the dashboards' variables: ``$timeFilter``,
``$interval`` (the ``interval`` variable), ``$host`` and ``$container`` (regex-formatted
by Grafana for ``=~ /^$var$/``), ``$stream`` and ``$search`` on the logs dashboard. Alert
statements carry their own window (``now() - 5m``) and group by the labels an alert
instance is named by: ``host`` and ``container_name``. CPU times are integer ns.
"""

from __future__ import annotations

SEL = '"host" =~ /^$host$/ AND "container_name" =~ /^$container$/'
BY = 'GROUP BY time($interval), "container_name" fill(none)'
ALERT_BY = 'GROUP BY "host", "container_name"'
NAMED = '"container_name" != \'\''  # named containers only (raw cgroups have no name)

# -- overview ---------------------------------------------------------------------------

RUNNING = ('SELECT count("u") AS "running" FROM (SELECT last("usage_total") AS "u" '
           f'FROM "container_cpu" WHERE time > now() - 30s AND {SEL} '
           'GROUP BY "container_name")')
HOST_CPU = ('SELECT sum("cores") AS "cores" FROM (SELECT non_negative_derivative('
            'max("usage_total"), 1s) / 1000000000 AS "cores" FROM "container_cpu" '
            'WHERE $timeFilter AND "host" =~ /^$host$/ '
            'GROUP BY time($interval), "host", "container_name") '
            'WHERE $timeFilter GROUP BY time($interval), "host" fill(none)')
HOST_MEM = ('SELECT sum("ws") AS "working set" FROM (SELECT mean("working_set") AS "ws" '
            'FROM "container_mem" WHERE $timeFilter AND "host" =~ /^$host$/ '
            'GROUP BY time($interval), "host", "container_name") '
            'WHERE $timeFilter GROUP BY time($interval), "host" fill(none)')
CPU_PERCENT = ('SELECT non_negative_derivative(max("usage_total"), 1s) / 10000000 '
               f'FROM "container_cpu" WHERE $timeFilter AND {SEL} {BY}')
CPU_USED_CORES = ('SELECT non_negative_derivative(max("usage_total"), 1s) / 1000000000 '
                  f'FROM "container_cpu" WHERE $timeFilter AND {SEL} {BY}')
CPU_QUOTA_CORES = ('SELECT last("cpu_quota") / last("cpu_period") FROM "container_spec" '
                   f'WHERE $timeFilter AND "cpu_quota" > 0 AND {SEL} {BY}')
MEM_VS_LIMIT = ('SELECT mean("working_set") AS "working set", last("limit") AS "limit" '
                f'FROM "container_mem" WHERE $timeFilter AND {SEL} {BY}')
NET = ('SELECT non_negative_derivative(sum("rx"), 1s) AS "rx", '
       'non_negative_derivative(sum("tx"), 1s) AS "tx" FROM (SELECT max("rx_bytes") AS "rx", '
       f'max("tx_bytes") AS "tx" FROM "container_net" WHERE $timeFilter AND {SEL} '
       'GROUP BY time($interval), "container_name", "interface") '
       'WHERE $timeFilter GROUP BY time($interval), "container_name" fill(none)')
BLKIO = ('SELECT non_negative_derivative(sum("r"), 1s) AS "read", '
         'non_negative_derivative(sum("w"), 1s) AS "write" FROM (SELECT max("read_bytes") AS "r", '
         f'max("write_bytes") AS "w" FROM "container_blkio" WHERE $timeFilter AND {SEL} '
         'GROUP BY time($interval), "container_name", "device") '
         'WHERE $timeFilter GROUP BY time($interval), "container_name" fill(none)')
THROTTLED = ('SELECT "t" / "p" * 100 AS "throttled" FROM (SELECT '
             'non_negative_difference(max("throttled_periods")) AS "t", '
             'non_negative_difference(max("periods")) AS "p" FROM "container_cpu" '
             f'WHERE $timeFilter AND {SEL} GROUP BY time($interval), "container_name") '
             'WHERE "p" > 0 GROUP BY "container_name"')
OOM_KILLS = ('SELECT count("exit_code") AS "oom kills" FROM "container_events" '
             f"WHERE $timeFilter AND \"action\" = 'oom_kill' AND {SEL} {BY}")
RESTARTS = ('SELECT count("exit_code") AS "restarts" FROM "container_events" '
            f"WHERE $timeFilter AND \"action\" = 'restart' AND {SEL} {BY}")
NEAR_MEM = ('SELECT last("working_set") / last("limit") * 100 AS "memory %" '
            f'FROM "container_mem" WHERE $timeFilter AND "limit" > 0 AND {SEL} '
            'GROUP BY "container_name"')
NEAR_PIDS = ('SELECT last("current") / last("max") * 100 AS "pids %" FROM "container_pids" '
             f'WHERE $timeFilter AND "max" > 0 AND {SEL} GROUP BY "container_name"')

# -- container detail -------------------------------------------------------------------

MEM_DETAIL = ('SELECT mean("working_set") AS "working set", mean("usage") AS "usage", '
              'mean("rss") AS "rss", mean("cache") AS "cache", mean("swap") AS "swap", '
              'last("limit") AS "limit" '
              f'FROM "container_mem" WHERE $timeFilter AND {SEL} {BY}')
PIDS_DETAIL = ('SELECT max("current") AS "pids", last("max") AS "pids.max" '
               f'FROM "container_pids" WHERE $timeFilter AND {SEL} {BY}')
PSI = ('SELECT mean("some_avg10") AS "some", mean("full_avg10") AS "full" FROM "container_psi" '
       f'WHERE $timeFilter AND {SEL} GROUP BY time($interval), "container_name", "resource" '
       'fill(none)')
# the writable layer (docker ps -s, walked every --fs-interval) and the filesystem it is on
LAYER = ('SELECT last("usage") AS "writable layer" FROM "container_fs" '
         f'WHERE $timeFilter AND {SEL} {BY}')
LAYER_FS_PERCENT = ('SELECT last("usage") / last("limit") * 100 AS "% of its filesystem" '
                    f'FROM "container_fs" WHERE $timeFilter AND "limit" > 0 AND {SEL} {BY}')
EVENTS = ('SELECT "message", "action", "exit_code" FROM "container_events" '
          f'WHERE $timeFilter AND {SEL}')
LOGS_INFLUX = ('SELECT "message", "stream", "container_name" FROM "container_logs" '
               'WHERE $timeFilter AND "host" =~ /^$host$/ AND "container_name" =~ /^$container$/ '
               'ORDER BY time DESC LIMIT 1000')

# -- logs (InfluxDB variant; the Loki variant is LogQL in build.py) ---------------------

LOG_SEARCH = ('SELECT "message", "stream", "container_name", "container_id" '
              'FROM "container_logs" WHERE $timeFilter AND "host" =~ /^$host$/ '
              'AND "container_name" =~ /^$container$/ AND "stream" =~ /^$stream$/ '
              'AND "message" =~ /$search/ ORDER BY time DESC LIMIT 1000')
LOG_VOLUME = ('SELECT count("message") AS "lines" FROM "container_logs" WHERE $timeFilter '
              'AND "host" =~ /^$host$/ AND "container_name" =~ /^$container$/ '
              'AND "stream" =~ /^$stream$/ GROUP BY time($interval), "container_name" fill(0)')

# -- variables --------------------------------------------------------------------------

VAR_HOST = 'SHOW TAG VALUES FROM "container_cpu" WITH KEY = "host"'
VAR_CONTAINER = ('SHOW TAG VALUES FROM "container_cpu" WITH KEY = "container_name" '
                 'WHERE "host" =~ /^$host$/')
VAR_LOG_HOST = 'SHOW TAG VALUES FROM "container_logs" WITH KEY = "host"'
VAR_LOG_CONTAINER = ('SHOW TAG VALUES FROM "container_logs" WITH KEY = "container_name" '
                     'WHERE "host" =~ /^$host$/')

# -- alert rules (instant windows; one series per host and container) -------------------


def _alert(select: str, measurement: str, window: str, where: str = "") -> str:
    cond = f" AND {where}" if where else ""
    return (f'SELECT {select} FROM "{measurement}" WHERE time > now() - {window} '
            f"AND {NAMED}{cond} {ALERT_BY}")


ALERT_MEM_RATIO = _alert('last("working_set") / last("limit") * 100 AS "percent"', "container_mem",
                         "1m", '"limit" > 0')
ALERT_MEM_WS = _alert('last("working_set")', "container_mem", "1m")
ALERT_MEM_LIMIT = _alert('last("limit")', "container_mem", "1m", '"limit" > 0')
ALERT_OOM = _alert('count("exit_code") AS "kills"', "container_events", "5m",
                   "\"action\" = 'oom_kill'")
ALERT_OOM_LIMIT = _alert('last("memory_limit")', "container_spec", "10m")
ALERT_OOM_PEAK = _alert('max("max_usage")', "container_mem", "10m")
ALERT_THROTTLED = _alert('(last("throttled_periods") - first("throttled_periods")) / '
                         '(last("periods") - first("periods")) * 100 AS "percent"',
                         "container_cpu", "1m")
ALERT_QUOTA = _alert('last("cpu_quota") / last("cpu_period") AS "cpus"', "container_spec", "1m",
                     '"cpu_quota" > 0')
ALERT_PIDS = _alert('last("current") / last("max") * 100 AS "percent"', "container_pids", "1m",
                    '"max" > 0')
ALERT_PIDS_CUR = _alert('last("current")', "container_pids", "1m")
ALERT_PIDS_MAX = _alert('last("max")', "container_pids", "1m", '"max" > 0')
# the layer's size in 4 h if it grows as in the last hour, as % of its filesystem
# (InfluxQL has no predict_linear: last + 4 x the hour's growth)
ALERT_LAYER_FILLING = _alert('(last("usage") + 4 * (last("usage") - first("usage"))) / '
                             'last("limit") * 100 AS "percent"', "container_fs", "1h",
                             '"limit" > 0')
ALERT_LAYER_USAGE = _alert('last("usage")', "container_fs", "1h")
ALERT_LAYER_LIMIT = _alert('last("limit")', "container_fs", "1h", '"limit" > 0')
ALERT_RESTARTS = _alert('count("exit_code") AS "restarts"', "container_events", "10m",
                        "\"action\" = 'restart'")
