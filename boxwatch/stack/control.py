"""What ``boxwatch up``, ``down`` and ``status`` do, over the state dir's ``run/`` files.

``up`` checks everything it can before starting anything (binaries, free ports, a
writable state dir), so the common mistakes are one clear line; then it writes the plan
and the config files, starts the supervisor detached and follows its ``status.json``
until every component is healthy, showing progress. ``down`` SIGTERMs the supervisor
(which stops its components) and then sweeps any pidfile left, so even a supervisor
killed with -9 leaves nothing running. ``status`` reads pidfiles and probes health.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from boxwatch.config import BY_NAME, Config
from boxwatch.stack import plan as planner
from boxwatch.stack import procs
from boxwatch.stack.credentials import (
    PrivacyError,
    credentials_path,
    ensure_credentials,
    private_dir,
)
from boxwatch.stack.plan import Plan

UP_TIMEOUT = 120.0
INSTALL_HINT = {
    "influxd": "apt-get install influxdb",
    "prometheus": "apt-get install prometheus",
    "alertmanager": "apt-get install prometheus-alertmanager",
}


class StackError(Exception):
    """Why the stack cannot start (one line, saying how to fix it)."""


def _option_hint(name: str) -> str:
    opt = BY_NAME[name]
    return f"{opt.flag} / {opt.env} / [{opt.section}] {opt.key} in boxwatch.toml"


def preflight(cfg: Config, plan: Plan) -> None:
    """StackError for a missing binary, a port in use or an unusable state dir."""
    for comp in plan.components:
        binary = comp.argv[0]
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            section = "influxdb" if comp.name == "influxd" else comp.name
            raise StackError(
                f"{comp.name}: {binary} not found; install it ({INSTALL_HINT.get(comp.name, '')}"
                f", or `make bootstrap`) or point {_option_hint(section + '.binary')} at it")
    host = cfg["listen_host"]
    ports = [(c.name, c.port, c.flag) for c in plan.components]
    ports.append(("influxd rpc", cfg["influxdb.rpc_port"], "--influxdb-rpc-port"))
    for name, port, flag in ports:
        if not procs.port_free(host, port):
            who = procs.listener(port)
            opt = next(o for o in BY_NAME.values() if o.flag == flag)
            raise StackError(
                f"port {host}:{port} for {name} is already in use"
                f"{' by ' + who if who else ''}; stop that or choose another port with "
                f"{_option_hint(opt.dotted)}")
    state = Path(plan.state_dir)
    try:
        private_dir(state)  # first: its subdirs are never reachable by others, even briefly
        for sub in ("run", "logs", "influxdb", "shipper", "prometheus", "alertmanager"):
            private_dir(state / sub)
        probe = state / "run" / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StackError(f"state dir {str(state)!r} is not writable ({exc.strerror}); choose "
                         f"another with {_option_hint('state_dir')}") from None
    except PrivacyError as exc:
        raise StackError(f"{exc} ({_option_hint('state_dir')})") from None


def load_status(state_dir: Path) -> dict[str, Any]:
    """The supervisor's status.json; {} when missing or damaged (empty, cut short, not an
    object), and only object-valued component entries, so a bad file never crashes
    ``status``: the pid files and health probes still tell what runs."""
    try:
        doc = json.loads((state_dir / "run" / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    comps = doc.get("components")
    doc["components"] = {k: v for k, v in comps.items() if isinstance(v, dict)} \
        if isinstance(comps, dict) else {}
    return doc


def supervisor_pid(state_dir: Path) -> int | None:
    return procs.read_pidfile(state_dir / "run" / "supervisor.pid")


def up(cfg: Config, out: TextIO = sys.stdout, python: str = sys.executable) -> int:
    """Start the stack and wait until it is healthy; 0 when it is (or already was)."""
    state = cfg.state_dir
    if supervisor_pid(state):
        out.write(f"boxwatch: the stack is already up (state dir {state}); "
                  "`boxwatch status` shows it, `boxwatch down` stops it\n")
        return 0
    plan = planner.build(cfg, python)
    preflight(cfg, plan)
    try:
        ensure_credentials(credentials_path(state))
    except (OSError, PrivacyError) as exc:
        raise StackError(f"InfluxDB credentials: {getattr(exc, 'strerror', None) or exc}") \
            from None
    for path, text in plan.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    run = plan.run_dir
    for stale in run.glob("*.pid"):
        stale.unlink()
    (run / "status.json").unlink(missing_ok=True)
    (run / "plan.json").write_text(plan.to_json())
    for name, why in plan.skipped.items():
        out.write(f"  {name:<13} skipped ({why})\n")
    with open(plan.log_dir / "supervisor.log", "ab") as log:
        # umask 077: whatever the components create (data, WAL, logs) is the owner's only
        subprocess.run([python, "-m", "boxwatch.stack.supervisor", "--detach", str(state)],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                       start_new_session=True, check=True, umask=0o077)
    return _follow(plan, out)


def _follow(plan: Plan, out: TextIO) -> int:
    """Print each component as it turns healthy; on failure, the reason, then clean up."""
    state = Path(plan.state_dir)
    shown: set[str] = set()
    started = time.monotonic()
    deadline = started + UP_TIMEOUT
    out.write(f"starting the stack in {state}\n")
    out.flush()
    while True:
        status = load_status(state)
        comps = status.get("components", {})
        for comp in plan.components:
            entry = comps.get(comp.name, {})
            if comp.name not in shown and entry.get("state") == "healthy":
                shown.add(comp.name)
                base = "/".join(comp.health.split("/", 3)[:3])
                out.write(f"  {comp.name:<13} {base:<24} healthy "
                          f"(pid {entry.get('pid')}, {time.monotonic() - started:.1f}s)\n")
                out.flush()
        if status.get("state") == "running":
            out.write("stack up: `boxwatch status` shows it, `boxwatch logs -f` follows the "
                      "logs, `boxwatch down` stops it\n")
            return 0
        error = status.get("error", "")
        if status.get("state") in ("failed", "stopped") or (
                not supervisor_pid(state) and time.monotonic() - started > 5):
            error = error or f"the supervisor exited; see {state}/logs/supervisor.log"
            down(state, quiet=True)
            raise StackError(f"{error} (logs in {state}/logs)")
        if time.monotonic() > deadline:
            down(state, quiet=True)
            raise StackError(f"the stack was not healthy after {UP_TIMEOUT:.0f}s; "
                             f"logs in {state}/logs")
        time.sleep(0.1)


def down(state_dir: Path, out: TextIO = sys.stdout, quiet: bool = False) -> int:
    """Stop the supervisor and everything it started; 0 also when nothing ran."""
    run = state_dir / "run"
    stopped: list[str] = []
    sup = supervisor_pid(state_dir)
    pids = {p.stem: procs.read_pidfile(p)
            for p in sorted(run.glob("*.pid"), key=lambda p: p.stat().st_mtime)
            if p.stem != "supervisor"}
    if sup:
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while procs.alive(sup) and time.monotonic() < deadline:
            time.sleep(0.05)
        if procs.alive(sup):
            procs.stop_group(sup, 1.0)
        stopped.append(f"supervisor (pid {sup})")
    for name, pid in pids.items():  # stragglers: a supervisor that died or was killed
        if pid and procs.alive(pid):
            procs.stop_group(pid)
        if pid:
            stopped.append(f"{name} (pid {pid})")
    for p in run.glob("*.pid"):
        p.unlink(missing_ok=True)
    if not quiet:
        if stopped:
            out.write("stopped " + ", ".join(stopped) + "\n")
        else:
            out.write(f"boxwatch: the stack is not running (state dir {state_dir})\n")
    return 0


def rows(state_dir: Path) -> list[dict[str, Any]]:
    """One row per component: name, pid (0 = not running), port, health, uptime, error."""
    path = state_dir / "run" / "plan.json"
    try:
        plan = Plan.from_json(path.read_text())
    except PermissionError:
        raise StackError(f"cannot read {path}: the state dir is private to the user who runs "
                         "the stack") from None
    except OSError:
        return []
    except ValueError as exc:  # empty, cut short, not a plan: one line, not a traceback
        raise StackError(f"damaged state file {path}: {exc}") from None
    status = load_status(state_dir).get("components", {})
    out = []
    for comp in plan.components:
        pid = procs.read_pidfile(state_dir / "run" / f"{comp.name}.pid") or 0
        healthy = bool(pid) and procs.http_ok(comp.health)
        uptime = 0.0
        if pid:
            uptime = time.time() - (state_dir / "run" / f"{comp.name}.pid").stat().st_mtime
        entry = status.get(comp.name, {})
        health = "healthy" if healthy else ("unhealthy" if pid else "down")
        if not healthy and entry.get("state") in ("restarting", "failed"):
            health = entry["state"]
        out.append({"name": comp.name, "pid": pid, "port": comp.port, "health": health,
                    "url": comp.health, "uptime_seconds": round(uptime, 1),
                    "restarts": entry.get("restarts", 0), "error": entry.get("error", "")})
    sup = supervisor_pid(state_dir) or 0
    out.append({"name": "supervisor", "pid": sup, "port": 0,
                "health": "running" if sup else "down", "url": "", "uptime_seconds": 0,
                "restarts": 0, "error": ""})
    return out


def _age(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}h{s % 3600 // 60}m"
        if s >= 3600
        else f"{s // 60}m{s % 60}s"
        if s >= 60
        else f"{s}s"
    )


def status(state_dir: Path, out: TextIO = sys.stdout, as_json: bool = False) -> int:
    """0 when every component is healthy, 1 when some is not, 3 when nothing runs."""
    table = rows(state_dir)
    running = any(r["pid"] for r in table)
    if as_json:
        out.write(json.dumps({"state_dir": str(state_dir), "running": running,
                              "components": table}, indent=1) + "\n")
    elif not table:
        out.write(f"boxwatch: no stack in {state_dir}; start one with `boxwatch up`\n")
    else:
        out.write(f"{'COMPONENT':<13} {'PID':>7}  {'PORT':>5}  {'HEALTH':<10} {'UPTIME':>7}  "
                  "RESTARTS\n")
        for r in table:
            out.write(f"{r['name']:<13} {r['pid'] or '-':>7}  {r['port'] or '-':>5}  "
                      f"{r['health']:<10} {_age(r['uptime_seconds']) if r['pid'] else '-':>7}  "
                      f"{r['restarts']}\n")
            if r["error"] and r["health"] != "healthy":
                out.write(f"    {r['error'][:300]}\n")
    if not running:
        return 3
    parts = [r for r in table if r["name"] != "supervisor"]
    return 0 if all(r["health"] == "healthy" for r in parts) else 1


def remove_state(state_dir: Path) -> None:
    """Delete the state dir (data included): for throwaway stacks such as the demo's."""
    if supervisor_pid(state_dir):
        raise StackError(f"the stack in {state_dir} is running; `boxwatch down` first")
    shutil.rmtree(state_dir, ignore_errors=True)
