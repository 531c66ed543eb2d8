"""The stack's supervisor: one detached process that starts the components of
``<state_dir>/run/plan.json`` in order, each in its own process group with its log under
``<state_dir>/logs/``, waits until each answers its health URL (running its hook, e.g.
creating the InfluxDB databases, once it does), restarts one that dies (backoff 1 s
doubling to 30 s; more than 5 deaths in 60 s and it is given up), and on SIGTERM stops
them all in reverse order and removes every pidfile.

Progress and failures go to ``run/status.json`` (written atomically), which
``boxwatch up`` follows and ``boxwatch status`` reads::

    {"state": "starting|running|failed|stopping|stopped", "error": "...",
     "components": {"influxd": {"state": "starting|healthy|restarting|failed",
                                "pid": 123, "since": 1700000000.0, "restarts": 0,
                                "error": "..."}}}

Run as ``python -m boxwatch.stack.supervisor STATE_DIR`` (``--detach`` forks first, so
the caller need not reap it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boxwatch.stack import influxd, procs
from boxwatch.stack.plan import Component, Plan
from formats.atomicfile import write_atomic
from formats.influx import read_credentials

HEALTH_TIMEOUT = 60.0
MAX_DEATHS = 5
DEATH_WINDOW = 60.0


def _influx_init(args: dict[str, Any]) -> None:
    """The stack's admin user (created on the first start), then the databases as it."""
    path = str(args["credentials"])
    try:
        auth = read_credentials(path)
    except ValueError as exc:
        raise influxd.InfluxInitError(str(exc)) from None
    url = str(args["url"])
    influxd.ensure_admin(url, auth, path)
    influxd.create_databases(url, list(args["databases"]), str(args["retention"]), auth)


HOOKS: dict[str, Callable[[dict[str, Any]], None]] = {"influx_init": _influx_init}


class StartError(Exception):
    """A component that did not become healthy; the message says why."""


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip()[:200] for line in text[-lines:])


class Supervisor:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.run_dir = plan.run_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.deaths: dict[str, list[float]] = {c.name: [] for c in plan.components}
        self.next_start: dict[str, float] = {}
        self.stopping = False
        self.status: dict[str, Any] = {"state": "starting", "error": "", "pid": os.getpid(),
                                       "components": {c.name: {"state": "waiting", "pid": 0,
                                                               "since": 0.0, "restarts": 0,
                                                               "error": ""}
                                                      for c in plan.components}}

    # -- status -------------------------------------------------------------------------

    def save(self) -> None:
        write_atomic(str(self.run_dir / "status.json"),
                     json.dumps(self.status, indent=1).encode(), 0o666)

    def mark(self, name: str, state: str, error: str = "", **more: Any) -> None:
        entry = self.status["components"][name]
        entry.update(state=state, error=error, **more)
        self.save()

    # -- one component ------------------------------------------------------------------

    def log_path(self, comp: Component) -> Path:
        return self.plan.log_dir / f"{comp.name}.log"

    def spawn(self, comp: Component) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path(comp), "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: "
                      f"{' '.join(comp.argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(comp.argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    cwd=self.plan.state_dir, env=env)
        self.procs[comp.name] = proc
        procs.write_pidfile(self.run_dir / f"{comp.name}.pid", proc.pid)
        self.mark(comp.name, "starting", pid=proc.pid, since=time.time())
        return proc

    def wait_healthy(self, comp: Component, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while not self.stopping:
            if proc.poll() is not None:
                raise StartError(f"{comp.name} exited with code {proc.returncode}: "
                                 f"{log_tail(self.log_path(comp))}")
            if procs.http_ok(comp.health):
                return
            if time.monotonic() > deadline:
                raise StartError(f"{comp.name} did not answer {comp.health} within "
                                 f"{HEALTH_TIMEOUT:.0f}s: {log_tail(self.log_path(comp))}")
            time.sleep(0.1)
        raise StartError("stopped while starting")

    def start(self, comp: Component, first: bool) -> None:
        proc = self.spawn(comp)
        self.wait_healthy(comp, proc)
        if first and comp.hook:
            try:
                HOOKS[comp.hook](comp.hook_args)
            except Exception as exc:  # any failure of the hook fails the start, with its text
                raise StartError(f"{comp.name}: {comp.hook} failed: {exc}") from None
        self.mark(comp.name, "healthy")

    def stop_one(self, comp: Component) -> None:
        proc = self.procs.pop(comp.name, None)
        if proc is not None:
            procs.stop_group(proc.pid)
            proc.wait()
        (self.run_dir / f"{comp.name}.pid").unlink(missing_ok=True)

    # -- the whole stack ----------------------------------------------------------------

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.on_signal)
        procs.write_pidfile(self.run_dir / "supervisor.pid", os.getpid())
        code = 0
        try:
            for comp in self.plan.components:
                self.start(comp, first=True)
            if not self.stopping:
                self.status["state"] = "running"
                self.save()
                self.watch()
        except StartError as exc:
            if self.stopping:  # `boxwatch down` while starting: a normal stop
                return self.shutdown(0)
            self.status.update(state="failed", error=str(exc))
            failed = next((c for c in self.plan.components
                           if self.status["components"][c.name]["state"] == "starting"), None)
            if failed is not None:
                self.mark(failed.name, "failed", str(exc))
            self.save()
            code = 1
        except BaseException:
            self.shutdown(1)
            raise
        return self.shutdown(code)

    def shutdown(self, code: int) -> int:
        """Stop every component (reverse order), clear pidfiles; ``code`` passes through."""
        self.status["state"] = "stopping" if code == 0 else "failed"
        self.save()
        for comp in reversed(self.plan.components):
            self.stop_one(comp)
        if code == 0:
            self.status["state"] = "stopped"
        for entry in self.status["components"].values():
            entry["pid"] = 0
        self.save()
        (self.run_dir / "supervisor.pid").unlink(missing_ok=True)
        return code

    def watch(self) -> None:
        """Until SIGTERM: restart components that died, with backoff."""
        by_name = {c.name: c for c in self.plan.components}
        while not self.stopping:
            now = time.monotonic()
            for name, comp in by_name.items():
                entry = self.status["components"][name]
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    self.procs.pop(name)
                    deaths = [t for t in self.deaths[name] if now - t < DEATH_WINDOW] + [now]
                    self.deaths[name] = deaths
                    why = f"exited with code {proc.returncode}: {log_tail(self.log_path(comp))}"
                    if len(deaths) > MAX_DEATHS:
                        (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
                        self.mark(name, "failed", f"gave up after {len(deaths)} exits in "
                                  f"{DEATH_WINDOW:.0f}s; last {why}", pid=0)
                        continue
                    self.next_start[name] = now + min(30.0, 2.0 ** (len(deaths) - 1))
                    self.mark(name, "restarting", why, pid=0)
                if name in self.next_start and now >= self.next_start[name]:
                    del self.next_start[name]
                    entry["restarts"] += 1
                    try:
                        self.start(comp, first=False)
                    except StartError as exc:
                        if self.stopping:
                            return
                        self.mark(name, "restarting", str(exc))
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    detach = "--detach" in args
    args = [a for a in args if a != "--detach"]
    if len(args) != 1:
        print("usage: python -m boxwatch.stack.supervisor [--detach] STATE_DIR", file=sys.stderr)
        return 2
    plan = Plan.from_json((Path(args[0]) / "run" / "plan.json").read_text())
    if detach and os.fork() > 0:
        os._exit(0)  # the caller reaps this parent at once; the child runs on its own
    return Supervisor(plan).run()


if __name__ == "__main__":
    sys.exit(main())
