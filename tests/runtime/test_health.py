"""Healthchecks as docker runs them: ``--health-*`` flags and the image's HEALTHCHECK,
probes inside the running container, ``State.Health`` (Status, FailingStreak, Log),
``box ps`` STATUS and ``--filter health=``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.flags import Namespace
from runtime.health import go_duration_string, healthcheck_config, probe_args
from tests.conftest import Box
from tests.support.images import REF, build_layered_archive
from tests.support.wait import poll as wait_for

pytestmark = pytest.mark.slow  # probes on real timers

FAST = ["--health-interval", "100ms", "--health-start-interval", "100ms"]


def health(box: Box, ref: str) -> dict[str, Any] | None:
    return json.loads(box.inspect(ref, "{{json .State.Health}}"))


def wait_status(box: Box, ref: str, status: str, timeout: float = 8.0) -> dict[str, Any]:
    h = wait_for(lambda: (lambda x: x if x and x["Status"] == status else None)(health(box, ref)),
                 timeout)
    assert h, f"{ref} never became {status}: {health(box, ref)}"
    return h


def ps_status(box: Box, name: str, *extra: str) -> str:
    rows = box.ok("ps", *extra, "--format", "{{.Names}}|{{.Status}}").splitlines()
    return dict(r.split("|", 1) for r in rows).get(name, "")


def ps_names(box: Box, *filters: str) -> list[str]:
    args = [a for f in filters for a in ("--filter", f)]
    return sorted(box.ok("ps", "-a", *args, "--format", "{{.Names}}").split())


@pytest.fixture(scope="module")
def layered(box_session: Box, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REF, whose config has ``HEALTHCHECK CMD-SHELL test -f /hello.txt`` every 1s."""
    archive = tmp_path_factory.mktemp("health") / "layered.tar"
    build_layered_archive(archive)
    box_session.ok("load", "-i", str(archive))
    yield REF
    ids = box_session("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        box_session("rm", "-f", *ids)
    box_session.ok("rmi", REF)


def test_passing_check_runs_inside_the_container_and_becomes_healthy(box: Box) -> None:
    cid = box.ok("run", "-d", "--name", "hc-ok", *FAST, "--health-cmd",
                 "hostname; tr '\\0' ' ' </proc/1/cmdline; echo; cat /proc/self/cgroup",
                 "busybox", "sleep", "30").strip()
    box.ok("run", "-d", "--name", "hc-long", *FAST, "--health-cmd", "yes | head -c 5000",
           "busybox", "sleep", "30")
    box.ok("run", "-d", "--name", "hc-none", "busybox", "sleep", "30")
    assert health(box, "hc-ok")["Status"] in ("starting", "healthy")  # recorded before run returns
    h = wait_status(box, "hc-ok", "healthy")
    assert h["FailingStreak"] == 0
    entry = h["Log"][-1]
    assert entry["ExitCode"] == 0
    hostname, pid1, cgroups = entry["Output"].split("\n", 2)
    assert hostname == box.inspect("hc-ok", "{{.Config.Hostname}}") == cid[:12]  # its uts ns
    assert pid1.strip() == "sleep 30"  # its pid and mount namespaces
    assert f"/box/{cid}" in cgroups  # its cgroup
    assert entry["Start"] <= entry["End"] and entry["End"].endswith("Z")
    long = wait_status(box, "hc-long", "healthy")["Log"][-1]["Output"]
    assert len(long) == 4096 + 3 and long.endswith("y\n...")  # moby's maxOutputLen
    assert health(box, "hc-none") is None
    assert "(healthy)" in ps_status(box, "hc-ok") and ps_status(box, "hc-ok").startswith("Up ")
    assert ps_status(box, "hc-none").startswith("Up ") and "(" not in ps_status(box, "hc-none")
    assert ps_names(box, "health=healthy") == ["hc-long", "hc-ok"]
    assert ps_names(box, "health=none") == ["hc-none"]
    # stopped, docker reports the last status as unhealthy and keeps the log
    box.ok("stop", "-t", "1", "hc-ok")
    after = health(box, "hc-ok")
    assert after["Status"] == "unhealthy" and after["Log"][-1]["ExitCode"] == 0
    assert ps_status(box, "hc-ok", "-a").startswith("Exited (")
    assert ps_names(box, "health=unhealthy") == ["hc-ok"]
    bad = box("ps", "--filter", "health=sick")
    assert bad.returncode != 0 and "health: sick" in bad.stderr


def test_failing_and_timed_out_checks_become_unhealthy_after_retries(box: Box) -> None:
    box.ok("run", "-d", "--name", "hc-fail", *FAST, "--health-retries", "2",
           "--health-cmd", "echo bad >&2; exit 3", "busybox", "sleep", "30")
    box.ok("run", "-d", "--name", "hc-slow", *FAST, "--health-retries", "1",
           "--health-timeout", "200ms", "--health-cmd", "echo partial; sleep 5",
           "busybox", "sleep", "30")
    h = wait_status(box, "hc-fail", "unhealthy")
    assert h["FailingStreak"] >= 2
    assert 2 <= len(h["Log"]) <= 5
    assert {(e["ExitCode"], e["Output"]) for e in h["Log"]} == {(3, "bad\n")}
    assert "(unhealthy)" in ps_status(box, "hc-fail")
    h = wait_status(box, "hc-slow", "unhealthy")
    entry = h["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (200ms): partial\n"
    # killed at the timeout, not waited for: no `sleep 5` piles up in the container
    assert len(box.ok("top", "hc-slow").splitlines()) <= 3
    assert ps_names(box, "health=unhealthy") == ["hc-fail", "hc-slow"]


def test_start_period_ignores_failures_until_a_probe_succeeds(box: Box) -> None:
    box.ok("run", "-d", "--name", "hc-grace", *FAST, "--health-retries", "1",
           "--health-start-period", "1500ms", "--health-cmd", "exit 1", "busybox", "sleep", "30")
    # the first probe succeeds, the next fail: inside the start period they count now
    box.ok("run", "-d", "--name", "hc-once", *FAST, "--health-retries", "1",
           "--health-start-period", "30s", "--health-cmd",
           "test -e /tmp/once && exit 1; touch /tmp/once", "busybox", "sleep", "30")
    h = wait_for(lambda: (lambda x: x if len(x["Log"]) >= 3 else None)(health(box, "hc-grace")))
    assert h["Status"] == "starting" and h["FailingStreak"] == 0
    assert "(health: starting)" in ps_status(box, "hc-grace")
    assert ps_names(box, "health=starting") == ["hc-grace"]
    once = wait_status(box, "hc-once", "unhealthy")
    assert [e["ExitCode"] for e in once["Log"][:2]] == [0, 1] and once["FailingStreak"] >= 1
    h = wait_status(box, "hc-grace", "unhealthy", timeout=6)
    assert h["FailingStreak"] >= 1


def test_image_healthcheck_runs_and_flags_override_or_disable_it(box: Box, layered: str) -> None:
    box.ok("run", "-d", "--name", "img-hc", layered, "sleep", "30")
    box.ok("run", "-d", "--name", "img-fast", "--health-interval", "100ms",
           "--health-retries", "4", layered, "sleep", "30")
    box.ok("run", "-d", "--name", "img-off", "--no-healthcheck", layered, "sleep", "30")
    fast = json.loads(box.inspect("img-fast", "{{json .Config.Healthcheck}}"))
    assert fast == {"Test": ["CMD-SHELL", "test -f /hello.txt"], "Interval": 100_000_000,
                    "Retries": 4}  # the image's command under the flags' values
    assert json.loads(box.inspect("img-off", "{{json .Config.Healthcheck}}")) == {"Test": ["NONE"]}
    assert wait_status(box, "img-fast", "healthy")["Log"][-1]["ExitCode"] == 0
    assert wait_status(box, "img-hc", "healthy", timeout=5)  # the image's 1s interval
    assert health(box, "img-off") is None
    assert "(" not in ps_status(box, "img-off")
    assert ps_names(box, "health=none") == ["img-off"]


@pytest.mark.parametrize("flags, message", [
    (["--health-interval", "abc"], 'invalid argument "abc" for "--health-interval" flag: time: '
                                   'invalid duration "abc"'),
    (["--health-timeout", "10"], 'time: missing unit in duration "10"'),
    (["--health-start-period", "-1s"], "--health-start-period cannot be negative"),
    (["--health-retries", "x"], 'invalid argument "x" for "--health-retries" flag'),
    (["--health-start-interval", "500us"], "StartInterval in Healthcheck cannot be less than 1ms "
                                           "(500µs)"),
    (["--no-healthcheck", "--health-cmd", "true"], "--no-healthcheck conflicts with --health-* "
                                                   "options"),
])
def test_bad_flags_exit_125_and_create_nothing(box: Box, flags: list[str], message: str) -> None:
    for cmd in ("run", "create"):
        r = box(cmd, "--name", "hc-bad", *flags, "busybox", "sleep", "30")
        assert r.returncode == 125, r.stderr
        assert message in r.stderr
    assert box.ok("ps", "-aq") == ""
    assert not (Path(box.root) / "names" / "hc-bad").exists()


def test_config_merge_and_formats() -> None:
    def opts(**kw: Any) -> Namespace:
        base = dict(health_cmd=None, health_interval=None, health_timeout=None,
                    health_retries=None, health_start_period=None, health_start_interval=None,
                    no_healthcheck=False)
        return Namespace(**{**base, **kw})

    image = {"Test": ["CMD", "check"], "Interval": 5_000_000_000, "Retries": 7}
    assert healthcheck_config(opts(), image) == image
    assert healthcheck_config(opts(), None) is None
    assert healthcheck_config(opts(health_cmd="ok", health_timeout="1m30s"), image) == {
        "Test": ["CMD-SHELL", "ok"], "Interval": 5_000_000_000, "Timeout": 90_000_000_000,
        "Retries": 7}
    assert healthcheck_config(opts(health_retries="0", health_interval="0"), image) == image
    assert probe_args({"Test": ["CMD", "a", "b"]}, {}) == ["a", "b"]
    assert probe_args({"Test": ["CMD-SHELL", "a b"]}, {}) == ["/bin/sh", "-c", "a b"]
    assert probe_args({"Test": ["CMD-SHELL", "x"]}, {"Shell": ["/bin/ash", "-c"]})[0] == "/bin/ash"
    assert probe_args({"Test": ["NONE"]}, {}) is None and probe_args(None, {}) is None
    for ns, text in ((200_000_000, "200ms"), (30_000_000_000, "30s"), (1_500_000_000, "1.5s"),
                     (120_000_000_000, "2m0s"), (3_600_000_000_000, "1h0m0s"),
                     (1_500, "1.5µs"), (0, "0s")):
        assert go_duration_string(ns) == text
