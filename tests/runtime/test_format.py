"""runtime.format against the strings real docker prints.

Expected values come from docker/go-units (duration_test.go, size_test.go),
docker/cli (templates_test.go, formatter/container_test.go, formatter.go) and moby
(container/state.go String())."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import InvalidArgument
from runtime.format import (
    PS_HEADERS,
    PS_TABLE,
    bytes_size,
    compile_template,
    human_duration,
    human_size,
    ps_status,
    render_format,
    render_table,
    tabwrite,
    time_ago,
)

S = 1_000_000_000
MIN, HOUR = 60 * S, 3600 * S
DAY, WEEK, MONTH, YEAR = 24 * HOUR, 7 * 24 * HOUR, 30 * 24 * HOUR, 365 * 24 * HOUR

# ------------------------------------------------------------------ go-units durations

GO_UNITS_DURATIONS = [  # go-units duration_test.go TestHumanDuration
    (450_000_000, "Less than a second"), (1 * S, "1 second"), (45 * S, "45 seconds"),
    (46 * S, "46 seconds"), (59 * S, "59 seconds"), (60 * S, "About a minute"),
    (1 * MIN, "About a minute"), (3 * MIN, "3 minutes"), (35 * MIN, "35 minutes"),
    (35 * MIN + 40 * S, "35 minutes"), (45 * MIN, "45 minutes"),
    (45 * MIN + 40 * S, "45 minutes"), (46 * MIN, "46 minutes"), (59 * MIN, "59 minutes"),
    (1 * HOUR, "About an hour"), (1 * HOUR + 29 * MIN, "About an hour"),
    (1 * HOUR + 31 * MIN, "2 hours"), (1 * HOUR + 59 * MIN, "2 hours"),
    (3 * HOUR, "3 hours"), (3 * HOUR + 29 * MIN, "3 hours"), (3 * HOUR + 31 * MIN, "4 hours"),
    (3 * HOUR + 59 * MIN, "4 hours"), (3 * HOUR + 60 * MIN, "4 hours"), (24 * HOUR, "24 hours"),
    (1 * DAY + 12 * HOUR, "36 hours"), (2 * DAY, "2 days"), (7 * DAY, "7 days"),
    (13 * DAY + 5 * HOUR, "13 days"), (2 * WEEK, "2 weeks"), (2 * WEEK + 4 * DAY, "2 weeks"),
    (3 * WEEK, "3 weeks"), (4 * WEEK, "4 weeks"), (4 * WEEK + 3 * DAY, "4 weeks"),
    (1 * MONTH, "4 weeks"), (1 * MONTH + 2 * WEEK, "6 weeks"), (2 * MONTH, "2 months"),
    (2 * MONTH + 2 * WEEK, "2 months"), (3 * MONTH, "3 months"), (3 * MONTH + 1 * WEEK, "3 months"),
    (5 * MONTH + 2 * WEEK, "5 months"), (13 * MONTH, "13 months"), (23 * MONTH, "23 months"),
    (24 * MONTH, "24 months"), (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"),
]


@pytest.mark.parametrize(("ns", "want"), GO_UNITS_DURATIONS)
def test_human_duration_matches_go_units(ns: int, want: str) -> None:
    assert human_duration(ns) == want


def test_human_duration_negative_is_less_than_a_second() -> None:
    assert human_duration(-5 * S) == "Less than a second"


_UNIT_RANK = {"second": 0, "seconds": 0, "minute": 1, "minutes": 1, "hour": 2, "hours": 2,
              "days": 3, "weeks": 4, "months": 5, "years": 6}


def _duration_rank(text: str) -> tuple[int, int]:
    if text == "Less than a second":
        return (-1, 0)
    if text.startswith("About a"):
        return (_UNIT_RANK[text.split()[-1]], 1)
    count, unit = text.split()
    return (_UNIT_RANK[unit], int(count))


@given(st.integers(0, 10 * YEAR), st.integers(0, 10 * YEAR))
def test_human_duration_is_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert _duration_rank(human_duration(lo)) <= _duration_rank(human_duration(hi))


def test_time_ago() -> None:
    now = 1_700_000_000 * S
    assert time_ago(now - 3 * MIN, now) == "3 minutes ago"
    assert time_ago(now - 65 * S, now) == "About a minute ago"  # docker/cli container_test


# ------------------------------------------------------------------ go-units sizes

KB, MB, GB, TB, PB = 1000, 1000**2, 1000**3, 1000**4, 1000**5
KiB, MiB, GiB, TiB, PiB = 1024, 1024**2, 1024**3, 1024**4, 1024**5


@pytest.mark.parametrize(("size", "want"), [  # go-units size_test.go TestHumanSize
    (1000, "1kB"), (1024, "1.024kB"), (1_000_000, "1MB"), (1_048_576, "1.049MB"), (2 * MB, "2MB"),
    (3.42 * GB, "3.42GB"), (5.372 * TB, "5.372TB"), (2.22 * PB, "2.22PB"),
    (10_000_000_000_000 * PB, "1e+04YB"), (0, "0B"), (999, "999B"),
])
def test_human_size_matches_go_units(size: float, want: str) -> None:
    assert human_size(size) == want


@pytest.mark.parametrize(("size", "want"), [  # go-units size_test.go TestBytesSize
    (1024, "1KiB"), (1024 * 1024, "1MiB"), (1_048_576, "1MiB"), (2 * MiB, "2MiB"),
    (3.42 * GiB, "3.42GiB"), (5.372 * TiB, "5.372TiB"), (2.22 * PiB, "2.22PiB"),
    (KiB * KiB * KiB * KiB * KiB * PiB, "1.049e+06YiB"), (1.5 * MiB, "1.5MiB"),
])
def test_bytes_size_matches_go_units(size: float, want: str) -> None:
    assert bytes_size(size) == want


def _parse_size(text: str, base: int, units: list[str]) -> float:
    m = re.fullmatch(r"([0-9.e+]+)([A-Za-z]+)", text)
    assert m, text
    return float(m.group(1)) * base ** units.index(m.group(2))


@given(st.integers(0, 10**20), st.integers(0, 10**20))
def test_sizes_are_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    dec = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    binu = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    assert _parse_size(human_size(lo), 1000, dec) <= _parse_size(human_size(hi), 1000, dec)
    assert _parse_size(bytes_size(lo), 1024, binu) <= _parse_size(bytes_size(hi), 1024, binu)


# ------------------------------------------------------------------ docker ps STATUS

NOW = "2024-05-01T12:00:00Z"
ZERO = "0001-01-01T00:00:00Z"


def _now() -> int:
    from formats.units import parse_rfc3339
    return parse_rfc3339(NOW)


@pytest.mark.parametrize(("state", "want"), [
    ({"Running": True, "StartedAt": "2024-05-01T11:59:55.123456789Z", "FinishedAt": ZERO}, "Up 4 "
                                                                                           "seconds"),
    ({"Running": True, "StartedAt": "2024-05-01T11:59:59Z"}, "Up 1 second"),
    ({"Running": True, "Paused": True, "StartedAt": "2024-05-01T11:58:00Z"},
     "Up 2 minutes (Paused)"),
    ({"Running": True, "Restarting": True, "ExitCode": 1, "StartedAt": "2024-05-01T11:00:00Z",
      "FinishedAt": "2024-05-01T11:59:57Z"}, "Restarting (1) 3 seconds ago"),
    ({"Running": False, "ExitCode": 137, "StartedAt": "2024-05-01T10:00:00Z",
      "FinishedAt": "2024-05-01T11:58:00Z"}, "Exited (137) 2 minutes ago"),
    ({"Running": False, "ExitCode": 0, "StartedAt": "2024-04-01T10:00:00Z",
      "FinishedAt": "2024-04-10T12:00:00Z"}, "Exited (0) 3 weeks ago"),
    ({"Status": "created", "Running": False, "StartedAt": ZERO, "FinishedAt": ZERO}, "Created"),
    ({"Running": False, "Dead": True, "StartedAt": "2024-05-01T10:00:00Z"}, "Dead"),
    ({"Status": "removing", "Running": False, "StartedAt": "2024-05-01T10:00:00Z"}, "Removal In "
                                                                                    "Progress"),
    ({"Running": True, "StartedAt": "2024-05-01T09:00:00Z", "Health": {"Status": "healthy"}},
     "Up 3 hours (healthy)"),
    ({"Running": True, "StartedAt": "2024-05-01T11:59:50Z", "Health": {"Status": "starting"}},
     "Up 10 seconds (health: starting)"),
    ({"Running": False, "StartedAt": "2024-05-01T10:00:00Z", "FinishedAt": ZERO}, ""),
])
def test_ps_status_words_like_moby(state: dict, want: str) -> None:
    assert ps_status(state, _now()) == want


# ------------------------------------------------------------------ templates

DATA = {
    "ID": "4f66ad9a0b2e",
    "Name": "/web",
    "Names": "web",
    "State": {"Pid": 4242, "Running": True, "Status": "running", "ExitCode": 0},
    "Config": {"Labels": {"com.x": "y", "a": "b"}, "Env": ["A=1", "B=<&>"], "Image": "alpine"},
    "Args": ["-c", "sleep 1"],
    "Mounts": [{"Source": "/a", "Destination": "/x"}, {"Source": "/b", "Destination": "/y"}],
    "Ports": "0.0.0.0:2->8/udp",
    "Ratio": 1.0,
    "Empty": [],
    "Nothing": None,
}


@pytest.mark.parametrize(("tmpl", "want"), [
    ("{{.Names}}", "web"),
    ("{{ .State.Pid }}", "4242"),
    ('{{index .Config.Labels "com.x"}}', "y"),
    ('{{index .Args 1}}', "sleep 1"),
    ("{{json .Config}}", '{"Labels":{"com.x":"y","a":"b"},"Env":["A=1","B=<&>"],"Image":"alpine"}'),
    ("{{json .Ports}}", '"0.0.0.0:2->8/udp"'),  # docker/cli TestParseJSONFunctions
    ("{{json .Ratio}} {{.Ratio}}", "1 1"),
    ("{{json .Nothing}}", "null"),
    (r"{{.ID}}\t{{.Names}}", "4f66ad9a0b2e\tweb"),
    (r"{{.ID}}\n{{.Names}}", "4f66ad9a0b2e\nweb"),
    ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/a:/x /b:/y "),
    ("{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}};{{end}}", "0=/a;1=/b;"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=b,com.x=y,"),
    ("{{range .Mounts}}{{if eq .Source \"/b\"}}{{break}}{{end}}{{.Source}}{{end}}", "/a"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}up{{else if .Names}}named{{else}}x{{end}}", "named"),
    ("{{with .Config}}{{.Image}}{{end}}", "alpine"),
    ("{{with .Nothing}}x{{else}}nil{{end}}", "nil"),
    ("{{upper .Names}} {{lower \"ABC\"}} {{title \"hello-world foo_bar\"}}", "WEB abc Hello-World "
                                                                             "Foo_bar"),
    ("{{.Names | upper}}", "WEB"),
    ("{{.Names | printf \"%s!\" | upper}}", "WEB!"),
    ('{{join .Args " "}}', "-c sleep 1"),
    ('{{join (split "text:with:colon" ":") "/"}}', "text/with/colon"),  # docker/cli templates_test
    ("{{len .Args}} {{len .Names}} {{len .Config.Labels}}", "2 3 2"),
    ('{{printf "%s=%d" .Names .State.Pid}}', "web=4242"),
    ('{{printf "%q %v %5s|%-5s|%05d" .Names .Args "ab" "cd" 42}}', '"web" [-c sleep 1]    ab|cd   '
                                                                   '|00042'),
    ('{{printf "%d" .Names}}', "%!d(string=web)"),
    ('{{printf "%s %s" .Names}}', "web %!s(MISSING)"),
    ('{{printf "%s" .Names 7}}', "web%!(EXTRA int=7)"),
    ("{{println .Names}}", "web\n"),
    ("{{print .Names 1 2 \"x\"}}", "web1 2x"),
    ("{{truncate .ID 5}} {{pad .Names 2 1}}|", "4f66a   web |"),  # docker/cli templates_test
    ("{{.Nope}}", "<no value>"),
    ("{{.Nothing}}", "<no value>"),
    ('{{index .Config.Labels "missing"}}', "<no value>"),
    ("{{.State}}", "map[ExitCode:0 Pid:4242 Running:true Status:running]"),
    ("{{.Args}}", "[-c sleep 1]"),
    ("{{$n := .Names}}{{$n}}-{{$.ID}}", "web-4f66ad9a0b2e"),
    ("{{- .Names -}}  \n  !", "web!"),
    ("a {{/* comment */}}b", "a b"),
    ("{{if and .State.Running (gt .State.Pid 100) (ne .Names \"db\")}}ok{{end}}", "ok"),
    ("{{or .Nothing \"fallback\"}}", "fallback"),
    ("{{(index .Mounts 0).Source}}", "/a"),
    ("{{.State.Pid | printf \"%x\"}}", "1092"),
])
def test_template_renders_like_go(tmpl: str, want: str) -> None:
    assert compile_template(tmpl).render(DATA) == want


def test_inspect_style_keeps_typed_backslashes() -> None:
    assert compile_template(r"{{.Names}}\t", expand=False).render(DATA) == "web\\t"


@dataclasses.dataclass
class Summary:
    ID: str
    Names: str

    def Label(self, key: str) -> str:
        return {"com.x": "y"}.get(key, "")


def test_template_over_objects() -> None:
    obj = Summary("abc", "web")
    assert compile_template('{{.ID}} {{.Label "com.x"}}').render(obj) == "abc y"
    with pytest.raises(InvalidArgument) as e:
        compile_template("{{.Nope}}").render(obj)
    assert str(e.value) == (
        'template parsing error: template: :1:2: executing "" at <.Nope>: '
        "can't evaluate field Nope in type Summary"
    )


@pytest.mark.parametrize(("tmpl", "message"), [
    # docker/cli container_test TestContainerContextWrite (lower-case prefix as in formatter.go)
    ("{{InvalidFunction}}", 'template parsing error: template: :1: function "InvalidFunction" not '
                            'defined'),
    ("{{nil}}", 'template parsing error: template: :1:2: executing "" at <nil>: nil is not a '
                'command'),
    ("{{foo .Names}}", 'template parsing error: template: :1: function "foo" not defined'),
    ("{{.Names", "template parsing error: template: :1: unclosed action"),
    ("{{if .Names}}x", "template parsing error: template: :1: unexpected EOF"),
    ("x\n{{end}}", "template parsing error: template: :2: unexpected {{end}}"),
    ("{{}}", "template parsing error: template: :1: missing value for command"),
    ("{{$x}}", 'template parsing error: template: :1: undefined variable "$x"'),
    ("{{upper}}", 'template parsing error: template: :1:2: executing "" at <upper>: '
                  "wrong number of args for upper: want 1 got 0"),
    ("{{upper .State.Pid}}", 'template parsing error: template: :1:2: executing "" at <upper '
                             '.State.Pid>: '
                             "wrong type for value; expected string; got int"),
    ("{{.Config.Nope.X}}", 'template parsing error: template: :1:2: executing "" at '
                           '<.Config.Nope.X>: '
                           "nil pointer evaluating interface {}.X"),
    ("{{.Names.X}}", 'template parsing error: template: :1:2: executing "" at <.Names.X>: '
                     "can't evaluate field X in type string"),
    ("{{index .Args 5}}", 'template parsing error: template: :1:2: executing "" at <index .Args '
                          '5>: '
                          "error calling index: index out of range: 5"),
    ("{{range .Names}}{{end}}", 'template parsing error: template: :1:8: executing "" at <.Names>: '
                                "range can't iterate over web"),
    ("{{.Names 1}}", 'template parsing error: template: :1:2: executing "" at <.Names>: '
                     "can't give argument to non-function .Names"),
])
def test_template_errors_are_invalid_argument_with_go_text(tmpl: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        compile_template(tmpl).render(DATA)
    assert str(e.value) == message
    assert "\n" not in str(e.value)
    assert e.value.exit_code == 125


def test_missingkey_error_like_docker_inspect() -> None:
    with pytest.raises(InvalidArgument, match='map has no entry for key "Nope"'):
        compile_template("{{.Nope}}", missing_key="error").render(DATA)


# ------------------------------------------------------------------ tables

CONTAINERS = [
    {"ID": "containerID1", "Image": "ubuntu", "Command": '""', "RunningFor": "24 hours ago",
     "Status": "", "Ports": "", "Names": "foobar_baz", "Size": "0B", "State": "running"},
    {"ID": "containerID2", "Image": "ubuntu", "Command": '""', "RunningFor": "24 hours ago",
     "Status": "", "Ports": "", "Names": "foobar_bar", "Size": "0B", "State": "running"},
]


def test_default_table_is_byte_identical_to_docker() -> None:
    # docker/cli container_test.go: NewContainerFormat("table", false, true)
    want = (
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES        SIZE\n"
        'containerID1   ubuntu    ""        24 hours ago                       foobar_baz   0B\n'
        'containerID2   ubuntu    ""        24 hours ago                       foobar_bar   0B\n'
    )
    assert render_format(None, PS_TABLE + r"\t{{.Size}}", CONTAINERS, PS_HEADERS) == want
    assert render_format("table", PS_TABLE + r"\t{{.Size}}", CONTAINERS, PS_HEADERS) == want


@pytest.mark.parametrize(("fmt", "items", "want"), [  # docker/cli container_test.go
    ("table {{.Image}}", CONTAINERS, "IMAGE\nubuntu\nubuntu\n"),
    ("table {{.State}}", CONTAINERS, "STATE\nrunning\nrunning\n"),
    ("{{.Image}}", CONTAINERS, "ubuntu\nubuntu\n"),
    ("{{.Image}}", [], ""),
    ("table {{.Image}}", [], "IMAGE\n"),
    (r"table {{.Image}}\t{{.Size}}", [], "IMAGE     SIZE\n"),
    (r"table {{.ID}}\t{{upper .Names}}", CONTAINERS,
     "CONTAINER ID   NAMES\ncontainerID1   FOOBAR_BAZ\ncontainerID2   FOOBAR_BAR\n"),
    (r"table {{.ID}}\t{{.Custom}}", CONTAINERS,
     "CONTAINER ID   CUSTOM\ncontainerID1   <no value>\ncontainerID2   <no value>\n"),
])
def test_render_format_modes(fmt: str, items: list, want: str) -> None:
    assert render_format(fmt, PS_TABLE, items, PS_HEADERS) == want


def test_render_format_json_mode() -> None:
    out = render_format("json", PS_TABLE, CONTAINERS[:1], PS_HEADERS)
    assert out.startswith(
        '{"ID":"containerID1","Image":"ubuntu","Command":"\\"\\""'
    ) and out.endswith("}\n")


def test_render_format_bad_template_raises() -> None:
    with pytest.raises(InvalidArgument, match='function "nope" not defined'):
        render_format("table {{nope}}", PS_TABLE, CONTAINERS, PS_HEADERS)


def test_render_table_pads_to_widest_plus_three_with_minwidth_ten() -> None:
    out = render_table(
        ["NAME", "A VERY LONG HEADER", "LAST"], [["x", "1", "tail"], ["longer-name-here", "", "t"]]
    )
    assert out == (
        "NAME               A VERY LONG HEADER   LAST\n"
        "x                  1                    tail\n"
        "longer-name-here                        t\n"
    )


def test_tabwriter_columns_are_per_block_like_go() -> None:
    # Go text/tabwriter doc example: b and c are in distinct columns (the b column
    # is not contiguous), and d/e are trailing text, never padded.
    text = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"
    assert tabwrite(text, minwidth=0, padding=1) == (
        "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"
    )


def test_tabwriter_counts_wide_runes_as_two_cells() -> None:
    assert tabwrite("名前\tx\nab\ty\n", minwidth=0, padding=1) == "名前 x\nab   y\n"


def test_importing_format_skips_dataclasses_and_typing() -> None:
    # every `box ps --format` pays this import; dataclasses costs ~7 ms, typing ~3 ms
    code = ("import sys, runtime.format; "
            "print(sorted(m for m in ('dataclasses', 'typing', 'decimal') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
