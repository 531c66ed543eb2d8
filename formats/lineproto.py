"""InfluxDB line protocol: escaping and one point, what every writer of it shares.

Escaping follows the line-protocol spec: measurement ``,`` and space; tag keys, tag values and field
keys ``,`` ``=`` space and ``\\``; string fields ``"`` and ``\\``. No value may hold a line break
(not every parser honours quotes when splitting lines), so a line break is written as the two
characters ``\\n`` / ``\\r``, and in tags also ``\\t`` ``\\f`` (as Telegraf does); readers get those
two characters back. InfluxDB 1.x does not unescape ``\\\\`` in tags, so a backslash in a tag value
reads back doubled there (2.x and VictoriaMetrics read it back exactly)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

INT64_MAX = 2**63 - 1

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ ", "\\": "\\\\", "\n": "\\n", "\r": "\\r"})
_TAG = str.maketrans(
    {
        ",": "\\,",
        "=": "\\=",
        " ": "\\ ",
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\f": "\\f",
    }
)
_STRING = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def escape_tag(text: str) -> str:
    """A tag key, tag value or field key."""
    return text.translate(_TAG)


def escape_string(text: str) -> str:
    """A string field value, without its surrounding quotes."""
    return text.translate(_STRING)


def format_value(value: object) -> str | None:
    """One field value; None for values line protocol cannot carry (NaN, inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{max(-INT64_MAX - 1, min(value, INT64_MAX))}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return f'"{escape_string(str(value))}"'


def tag_set(tags: Iterable[tuple[str, str]]) -> str:
    """``,k=v,k2=v2`` sorted by key (InfluxDB's preferred order), empty values left out."""
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags) if v)


def line(measurement: str, tags: str, fields: Mapping[str, object], time_ns: int) -> str | None:
    """One point; ``tags`` is a ``tag_set`` string. None when no field is representable."""
    parts = []
    for key, value in fields.items():
        text = format_value(value)
        if text is not None:
            parts.append(f"{escape_tag(key)}={text}")
    if not parts:
        return None
    return f"{escape_measurement(measurement)}{tags} {','.join(parts)} {time_ns}"
