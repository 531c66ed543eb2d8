"""docker's table output: its tabwriter (minwidth 10, padding 3, spaces) and the
three ``--format`` modes that ``ps``, ``images`` and ``stats`` share.

Columns are tab-terminated cells in consecutive lines (Go's elastic tabstops):
text after the last tab of a line is not padded, so the last column has no
trailing spaces, exactly as ``docker ps`` prints.
"""

from __future__ import annotations

import unicodedata

from runtime.format.template import compile_template

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MIN_WIDTH = 10
PADDING = 3


def _width(text: str) -> int:
    """Display width in cells, as go-runewidth counts it (wide CJK = 2, combining = 0)."""
    w = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def tabwrite(text: str, minwidth: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Go text/tabwriter with padchar ' ' and no flags, over a whole buffer."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            row = lines[i]
            for j, cell in enumerate(row):
                out.append(cell)
                if j < len(widths) and j < len(row) - 1:
                    out.append(" " * (widths[j] - _width(cell)))
            if i + 1 < len(lines):
                out.append("\n")

    def fmt(lo: int, hi: int) -> None:
        column = len(widths)
        this = lo
        while this < hi:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(lo, this)
            lo = this
            width = minwidth
            while this < hi and column < len(lines[this]) - 1:
                width = max(width, _width(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(lo, this)
            widths.pop()
            lo = this
        write_lines(lo, hi)

    fmt(0, len(lines))
    return "".join(out)


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    """A header row and data rows aligned like ``docker ps``; ends with a newline."""
    body = "".join("\t".join(r) + "\n" for r in [headers, *rows])
    return tabwrite(body)


def render_format(fmt: str | None, default_table: str, items: list[Any],
                  headers: dict[str, str]) -> str:
    """What ``--format`` prints for a list (docker/cli formatter.Context):
    None or "table" -> ``default_table``; "json" -> one ``{{json .}}`` line per item;
    "table ..." -> a header row from ``headers`` then rows, through the tabwriter;
    anything else -> the template once per item, one line each, no header."""
    if fmt is None or fmt.strip() == "" or fmt.strip() == "table":
        fmt = default_table
    elif fmt.strip() == "json":
        fmt = "{{json .}}"
    is_table = fmt.startswith("table")
    body = fmt[len("table"):] if is_table else fmt
    tmpl = compile_template(body.strip(" "))
    rows = "".join(tmpl.render(item) + "\n" for item in items)
    if not is_table:
        return rows
    return tabwrite(tmpl.render_header(headers) + "\n" + rows)


# docker/cli's defaults, for the commands that print these lists.
PS_TABLE = ("table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}"
            "\\t{{.Ports}}\\t{{.Names}}")
PS_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
    "CreatedAt": "CREATED AT", "Status": "STATUS", "State": "STATE", "Ports": "PORTS",
    "Names": "NAMES", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
}
IMAGES_TABLE = ("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t"
                "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}")
IMAGES_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
}
STATS_TABLE = ("table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t"
               "{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}")
STATS_HEADERS = {
    "ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}
