"""Attack: the health check runs a command from the image (``HEALTHCHECK CMD``) in the
container every interval, as ``exec`` does, but box started it with the capability set
only: no seccomp program and no no_new_privs. A hostile image's probe could then do
what its own processes cannot (``unshare``, ``keyctl``, ``bpf``...). The probe now gets
exactly what ``box exec`` gets: the container's capabilities, seccomp program and
no_new_privs, in all of its namespaces."""

from __future__ import annotations

import json
import time

from tests.conftest import Box

FAST = ["--health-interval", "100ms", "--health-start-interval", "100ms"]
STATUS = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; readlink /proc/self/ns/pid"


def _probe_output(box: Box, cid: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = json.loads(box.inspect(cid, "{{json .State.Health}}") or "null") or {}
        for entry in health.get("Log") or []:
            if entry.get("ExitCode") == 0 and entry.get("Output"):
                return entry["Output"]
        time.sleep(0.1)
    raise AssertionError(f"no successful probe: {health}")


def _fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        out[key.strip() if sep else "pidns"] = value.strip() if sep else line.strip()
    return out


def test_the_probe_is_confined_like_exec(box: Box) -> None:
    cid = box.ok("run", "-d", "--network", "none", "--cap-drop", "NET_RAW",
                 "--security-opt", "no-new-privileges", *FAST, "--health-cmd", STATUS,
                 "busybox", "sleep", "300").strip()
    probe = _fields(_probe_output(box, cid))
    exec_ = _fields(box.ok("exec", cid, "sh", "-c", STATUS))
    assert probe["Seccomp"] == "2", probe
    assert probe["NoNewPrivs"] == "1", probe
    assert probe == exec_, (probe, exec_)  # same capabilities, same pid namespace


def test_a_privileged_containers_probe_is_not_filtered(box: Box) -> None:
    """Docker applies no profile to a privileged container: nor to its probe."""
    cid = box.ok("run", "-d", "--network", "none", "--privileged", *FAST, "--health-cmd",
                 STATUS, "busybox", "sleep", "300").strip()
    probe = _fields(_probe_output(box, cid))
    assert probe["Seccomp"] == "0" and probe == _fields(box.ok("exec", cid, "sh", "-c",
                                                               STATUS)), probe
