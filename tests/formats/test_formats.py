"""The bottom layer's one parser per unit and the one label whitelist, as every program
now uses them (the programs' own tests cover them on their paths too)."""

from __future__ import annotations

import pytest

from formats import statefile
from formats.delivery import Backoff, retriable
from formats.influx import Refused, V1Write
from formats.labels import LabelWhitelist, split_patterns
from formats.units import (
    from_human_size,
    parse_duration,
    parse_duration_ns,
    parse_rfc3339,
    ram_in_bytes,
    rfc3339nano,
)

T = 1714557601_500000000  # 2024-05-01T10:00:01.5Z


@pytest.mark.parametrize("text", ["2024-05-01T10:00:01.5Z", "2024-05-01T10:00:01.500000000Z",
                                  "2024-05-01T12:00:01.5+02:00", "2024-05-01T10:00:01.5000000001Z"])
def test_rfc3339_strict_forms(text: str) -> None:
    assert parse_rfc3339(text, strict=True) == T


@pytest.mark.parametrize("text", ["2024-05-01 10:00:01.5", "2024-05-01t10:00:01.5z",
                                  " 2024-05-01T12:00:01.5+0200 "])
def test_rfc3339_lenient_forms_are_not_json_file_times(text: str) -> None:
    assert parse_rfc3339(text) == T
    with pytest.raises(ValueError):
        parse_rfc3339(text, strict=True)


@pytest.mark.parametrize("text", ["2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "yesterday", ""])
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_rfc3339nano_round_trips_and_trims_like_go() -> None:
    assert rfc3339nano(T) == "2024-05-01T10:00:01.5Z"
    assert rfc3339nano(T - 500_000_000) == "2024-05-01T10:00:01Z"
    assert parse_rfc3339(rfc3339nano(T + 7), strict=True) == T + 7


def test_durations_go_syntax_and_bare_seconds() -> None:
    assert parse_duration_ns("1h30m") == 5400 * 10**9
    assert parse_duration_ns("250ms") == 250 * 10**6
    assert parse_duration_ns("1.5s") == 1_500_000_000
    with pytest.raises(ValueError):
        parse_duration_ns("5")  # Go: missing unit
    assert parse_duration_ns("5", bare_seconds=True) == 5 * 10**9
    assert parse_duration("2.5") == 2.5 and parse_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration_ns("2d")  # not Go's
    assert parse_duration_ns("2d", days=True) == 2 * 86400 * 10**9
    for bad in ("", "-1s", "1x", "s", "1s2"):
        with pytest.raises(ValueError):
            parse_duration_ns(bad, bare_seconds=True)


def test_sizes_binary_and_decimal_as_docker_means_them() -> None:
    assert ram_in_bytes("32m") == 32 << 20 and ram_in_bytes("1GiB") == 1 << 30
    assert ram_in_bytes("512k") == 512 << 10 and ram_in_bytes("100") == 100
    assert ram_in_bytes("1.5k") == 1536
    with pytest.raises(ValueError, match="invalid size: '12x'"):
        ram_in_bytes("12x")
    assert from_human_size("10m") == 10_000_000 and from_human_size("1KiB") == 1000
    with pytest.raises(ValueError, match="invalid suffix"):
        from_human_size("1zb")


def test_label_whitelist_exact_names_and_globs() -> None:
    wl = LabelWhitelist(split_patterns(["app, io.kubernetes.*", "team-?", "app"]))
    assert wl.patterns == ("app", "io.kubernetes.*", "team-?")
    labels = {"app": "web", "io.kubernetes.pod.name": "web-0", "team-a": "x", "team-ab": "y",
              "apps": "no", "IO.KUBERNETES.X": "case matters"}
    assert wl.filter(labels) == {"app": "web", "io.kubernetes.pod.name": "web-0", "team-a": "x"}
    assert LabelWhitelist([]).filter(labels) == {}


def test_state_file_readers_do_not_trust_types() -> None:
    doc = {"ID": "ab" * 32, "Name": "/web", "Config": {"Image": "busybox", "Labels": "junk"},
           "State": {"Running": True, "Pid": 42, "StartedAt": "0001-01-01T00:00:00Z"}}
    assert statefile.container_name(doc) == "web" and statefile.image_name(doc) == "busybox"
    assert statefile.labels(doc) == {} and statefile.says_running(doc) and statefile.pid(doc) == 42
    assert statefile.started_at(doc) == "" and statefile.box_cgroup(doc) is None
    assert statefile.docker_cgroups("c", {"CgroupParent": "kube.slice"})[0] == \
        "/kube.slice/docker-c.scope"
    assert statefile.container_id({"ID": 7}) == ""


def test_delivery_policy_and_v1_requests() -> None:
    assert retriable(0) and retriable(429) and retriable(503) and not retriable(400)
    assert all(0 <= Backoff(0.5, 4.0).delay(n) <= 4.0 for n in range(1, 20))
    assert Backoff(0.5, 4.0).delay(1, retry_after=10.0) == 10.0
    w = V1Write("http://u:s3cret@127.0.0.1:8086/", "logs", gzip="auto")
    assert not w.gzip and w.write_url == "http://127.0.0.1:8086/write?db=logs&precision=ns"
    assert w.headers["Authorization"].startswith("Basic ") and "s3cret" in w.secrets
    w.check(204, b"")
    with pytest.raises(Refused) as info:
        w.check(404, b'{"error":"database not found: \\"logs\\" (s3cret)"}', "2")
    assert info.value.database_missing and info.value.retry_after == 2.0
    assert "s3cret" not in str(info.value)
