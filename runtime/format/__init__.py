"""Output formatting shared by ``box ps``, ``images``, ``inspect`` and ``stats``:
Go templates for ``--format``, docker's tables, and docker's human-readable units."""

from runtime.format.human import bytes_size, human_duration, human_size, ps_status, time_ago
from runtime.format.table import (
    IMAGES_HEADERS,
    IMAGES_TABLE,
    PS_HEADERS,
    PS_TABLE,
    STATS_HEADERS,
    STATS_TABLE,
    render_format,
    render_table,
    tabwrite,
)
from runtime.format.template import Template, compile_template, expand_escapes

__all__ = [
    "IMAGES_HEADERS", "IMAGES_TABLE", "PS_HEADERS", "PS_TABLE", "STATS_HEADERS", "STATS_TABLE",
    "Template", "bytes_size", "compile_template", "expand_escapes", "human_duration",
    "human_size", "ps_status", "render_format", "render_table", "tabwrite", "time_ago",
]
