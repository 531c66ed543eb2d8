"""``boxwatch demo`` (what ``make demo`` runs): the local stack, four containers under
limits (a web server behind a published port with traffic against it, a CPU burner under
``--cpus 0.5``, a memory hog OOM-killed at its ``-m`` limit and restarted by its policy, a
chatty logger), a live ``box stats``, the alert that fired, and answers from the stores
with the commands that get them. ``--seconds`` (or ``DEMO_SECONDS``) is how long the
containers run before the answers. It removes its containers and stops the stack at the
end (``--keep`` leaves both running and says how to stop them).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from boxwatch import config
from boxwatch.config import Config, ConfigError
from boxwatch.demo.workload import Box, Receiver, Traffic, containers, wait_for
from boxwatch.stack import control, procs
from boxwatch.stack.control import StackError
from boxwatch.stack.credentials import credentials_path
from boxwatch.stack.influxd import InfluxInitError, query
from boxwatch.stack.plan import probe_host
from formats.influx import read_credentials

DEMO_DIR = "/tmp/boxwatch-demo"
NAMES = ("web", "burner", "hog", "logger")


class Demo:
    def __init__(self, cfg: Config, box: Box, seconds: float, web_port: int, image: str,
                 own_state: bool) -> None:
        self.cfg = cfg
        self.box = box
        self.seconds = seconds
        self.web_port = web_port
        self.image = image
        self.own_state = own_state
        self.tty = sys.stdout.isatty()
        self.started: list[str] = []
        self.influx = f"http://{probe_host(cfg['listen_host'])}:{cfg['influxdb.port']}"
        self.config_flag = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
        # the stack's InfluxDB wants its user and password: shown by the file's path only;
        # `boxwatch logs` finds it in the state dir, unless that is the demo's own
        self.credentials = str(credentials_path(cfg.state_dir))
        self.logs_flags = ["--logs-credentials", self.credentials] \
            if own_state and not cfg["logs.url"] else []

    def say(self, text: str) -> None:
        print(f"\n\033[1m==> {text}\033[0m" if self.tty else f"\n==> {text}", flush=True)

    def cmd(self, text: str) -> None:
        print(f"  $ {text}", flush=True)

    # -- phases -------------------------------------------------------------------------

    def image_ready(self) -> None:
        if self.box("images", "-q", self.image).stdout.strip():
            return
        self.say(f"building a {self.image} image from the host's busybox-static")
        if (config.REPO / "tests" / "support" / "busybox.py").is_file() \
                and str(config.REPO) not in sys.path:
            sys.path.append(str(config.REPO))  # running from the repository
        try:
            from tests.support.busybox import build_busybox_tar
        except ImportError:
            raise StackError(f"no {self.image!r} image under {self.box.root}; import one "
                             f"with `BOX_ROOT={self.box.root} box import ROOTFS.tar "
                             f"{self.image}`") from None
        tar = Path(self.box.root).parent / "busybox.tar"
        tar.parent.mkdir(parents=True, exist_ok=True)
        build_busybox_tar(tar)
        self.box.ok("import", str(tar), self.image)

    def run_containers(self) -> None:
        self.say("containers under limits (box run, docker's flags)")
        for name, args in containers(self.image, self.web_port).items():
            self.box("rm", "-f", name)
            self.cmd(f"box run -d --name {name} " + " ".join(shlex.quote(a) for a in args))
            self.box.ok("run", "-d", "--name", name, *args)
            self.started.append(name)

    def show_stats(self, seconds: float) -> None:
        self.say(f"box stats, live for {seconds:.0f}s (the collector's numbers)")
        if self.tty:
            proc = subprocess.Popen([self.box.binary, "stats", *NAMES], env=self.box.env)
            try:
                proc.wait(seconds)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(5)
            return
        end = time.monotonic() + seconds
        while True:
            print(self.box("stats", "--no-stream", *NAMES).stdout.rstrip(), flush=True)
            if time.monotonic() + 3 > end:
                break
            time.sleep(3)
            print()

    def am_alerts(self) -> list[dict[str, Any]]:
        if "alertmanager" in self.plan_skipped():
            return []
        url = f"http://{probe_host(self.cfg['listen_host'])}:{self.cfg['alertmanager.port']}"
        try:
            import urllib.request

            with urllib.request.urlopen(url + "/api/v2/alerts", timeout=2) as resp:
                raw = json.load(resp)
        except (OSError, ValueError):
            return []
        return [{"alertname": a["labels"].get("alertname", ""), "via": "Alertmanager API",
                 "status": a.get("status", {}).get("state", ""),
                 "container": a["labels"].get("container_name") or a["labels"].get("name", ""),
                 "summary": a.get("annotations", {}).get("summary", ""),
                 "description": a.get("annotations", {}).get("description", "")} for a in raw]

    def plan_skipped(self) -> dict[str, str]:
        try:
            return json.loads((self.cfg.state_dir / "run" / "plan.json").read_text())["skipped"]
        except (OSError, ValueError, KeyError):
            return {}

    def show_alert(self, receiver: Receiver, timeout: float) -> None:
        self.say("the alert that fired: hog ran into its 32 MiB limit")

        def oom() -> list[dict[str, Any]]:
            return [a for a in receiver.alerts() + self.am_alerts()
                    if a["alertname"] == "ContainerOOMKilled" and a["container"] == "hog"]

        found = wait_for(oom, timeout)
        if not found:
            print("  no OOM alert yet (the hog grows for ~8 s before the kernel kills it)")
        else:
            a = found[0]
            print(f"  ALERT {a['alertname']} [{a['status'] or 'firing'}] container={a['container']}"
                  f" (received from {a['via']})")
            print(f"  {a['summary']}")
            print(f"  {a['description']}")
        if "alertmanager" not in self.plan_skipped():
            self.cmd(f"curl -s http://{probe_host(self.cfg['listen_host'])}:"
                     f"{self.cfg['alertmanager.port']}/api/v2/alerts   # what Alertmanager holds")
        state: list[str] = []

        def restarted() -> bool:
            # the alert can arrive within milliseconds of the kill, before the monitor's
            # restart back-off (100 ms and up) has run: wait for the restart it narrates
            state[:] = self.box("inspect", "-f", "{{.State.OOMKilled}} {{.RestartCount}} "
                                "{{.State.Status}}", "hog").stdout.split()
            return len(state) == 3 and state[1] != "0"

        wait_for(restarted, 10.0)
        self.cmd("box inspect -f '{{.State.OOMKilled}} {{.RestartCount}}' hog")
        if len(state) == 3:
            print(f"  OOMKilled={state[0]} RestartCount={state[1]} (restart policy "
                  f"on-failure:3) status={state[2]}")

    def show_metrics(self) -> None:
        self.say("metrics from InfluxDB (what the Grafana dashboards query)")
        window = f"time > now() - {int(self.seconds) + 60}s"
        names = '"container_name" =~ /^(web|burner|hog|logger)$/'
        mem = (f'SELECT max("working_set") AS "peak", last("limit") AS "limit" FROM '
               f'"container_mem" WHERE {window} AND {names} GROUP BY "container_name"')
        cpu = (f'SELECT last("throttled_periods") AS "throttled", last("periods") AS "periods" '
               f'FROM "container_cpu" WHERE {window} AND {names} GROUP BY "container_name"')
        ooms = (f'SELECT count("exit_code") AS "n" FROM "container_events" WHERE {window} AND '
                f'"action" = \'oom_kill\' AND {names} GROUP BY "container_name"')
        db = self.cfg["influxdb.metrics_db"]
        self.cmd(f"curl -sG --netrc-file {shlex.quote(self.credentials)} {self.influx}/query "
                 f"--data-urlencode db={db} --data-urlencode q={shlex.quote(mem)}")
        print(f"  (and the same for container_cpu and container_events:\n   {cpu}\n   {ooms})")
        rows: dict[str, dict[str, float]] = {n: {} for n in NAMES}
        try:
            auth = read_credentials(self.credentials)
            for statement in (mem, cpu, ooms):
                for series in query(self.influx, statement, db, auth=auth):
                    name = series["tags"]["container_name"]
                    values = dict(zip(series["columns"], series["values"][0], strict=False))
                    rows.setdefault(name, {}).update(values)
        except (InfluxInitError, OSError, ValueError) as exc:
            print(f"  query failed: {exc}")
            return
        mib = 1024 * 1024
        print(f"\n  {'CONTAINER':<10} {'PEAK MEMORY':>12} {'LIMIT':>10} {'CPU THROTTLED':>16} "
              f"{'OOM KILLS':>9}")
        for name in NAMES:
            r = rows.get(name, {})
            peak = f"{r['peak'] / mib:.1f} MiB" if r.get("peak") is not None else "-"
            limit = f"{r['limit'] / mib:.0f} MiB" if r.get("limit") else "none"
            throttled = (f"{100 * r['throttled'] / r['periods']:.0f}% of periods"
                         if r.get("periods") else "-")
            print(f"  {name:<10} {peak:>12} {limit:>10} {throttled:>16} {int(r.get('n') or 0):>9}")

    def show_logs(self) -> None:
        from boxwatch.logs.cli import main as logs_main

        self.say("logs from the central store (the shipper wrote them to InfluxDB)")
        for args in (["--container", "hog", "--limit", "4"],
                     ["--container", "web|logger", "--stream", "stderr", "--limit", "6"]):
            args = [*self.logs_flags, *args]
            shown = " ".join(shlex.quote(a) for a in args)
            self.cmd(f"boxwatch logs{self.config_flag} {shown}")
            extra = ["--config", self.cfg.path] if self.cfg.path else []
            logs_main([*extra, *args, "--color", "always" if self.tty else "never"])

    def next_steps(self, keep: bool) -> None:
        self.say("what next")
        state = f" --state-dir {self.cfg.state_dir}"
        print(f"  boxwatch status{state}          # each part: pid, port, health")
        flags = "".join(f" {shlex.quote(a)}" for a in self.logs_flags)
        print(f"  boxwatch logs{self.config_flag}{flags} -f --container 'web|hog'   # follow logs")
        print("  Grafana with the dashboards and alerts, on a Docker host:")
        print("    cd compose && cp .env.example .env && docker compose up -d   "
              "# then http://localhost:3000")
        if keep:
            print(f"  the stack and the containers keep running: stop them with\n"
                  f"    BOX_ROOT={self.box.root} BOX_EXEC_ROOT={self.box.exec_root} box rm -f "
                  f"{' '.join(self.started)}\n    boxwatch down{state}")

    def cleanup(self) -> None:
        if self.started:
            self.box("rm", "-f", *self.started)
        if not self.box("ps", "-aq").stdout.strip():  # nothing else of this root runs
            from runtime.network.teardown import teardown_root
            from runtime.paths import Paths

            teardown_root(Paths(self.box.root, self.box.exec_root))


def _web_port(requested: int, host: str) -> int:
    if requested:
        return requested
    if procs.port_free(host, 8080):
        return 8080
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, prog: str = "boxwatch demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("DEMO_SECONDS") or 60),
                        help="how long the containers run before the answers "
                             "(default 60; $DEMO_SECONDS)")
    parser.add_argument("--box-root", default=os.environ.get("BOX_ROOT") or f"{DEMO_DIR}/root")
    parser.add_argument("--box-exec-root",
                        default=os.environ.get("BOX_EXEC_ROOT") or f"{DEMO_DIR}/run")
    parser.add_argument("--image", default="busybox")
    parser.add_argument("--web-port", type=int, default=0,
                        help="host port of the web server (default 8080, or a free one)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack and the containers running")
    config.add_flags(parser, ("", "influxdb", "collector", "shipper", "prometheus",
                              "alertmanager", "logs"))
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    signal.signal(signal.SIGTERM, _on_term)
    started = time.monotonic()
    with Receiver() as receiver:
        try:
            base = config.load(args)
            overrides: dict[str, Any] = {"roots": [args.box_root],
                                         "alertmanager.webhook": receiver.url}
            own_state = base.source["state_dir"] == "default"
            if own_state:
                overrides["state_dir"] = f"{DEMO_DIR}/stack"
            cfg = config.load(args, overrides=overrides)
            box = Box(args.box_root, args.box_exec_root)
            demo = Demo(cfg, box, args.seconds, _web_port(args.web_port, "127.0.0.1"),
                        args.image, own_state)
            return run(demo, receiver, args.keep, started)
        except (ConfigError, StackError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"\n{prog}: interrupted", file=sys.stderr)
            return 130


def run(demo: Demo, receiver: Receiver, keep: bool, started: float) -> int:
    cfg = demo.cfg
    was_up = control.supervisor_pid(cfg.state_dir) is not None
    if demo.own_state and not was_up:
        control.remove_state(cfg.state_dir)  # a fresh demo: no data of an earlier run
    traffic: Traffic | None = None
    try:
        demo.say(f"boxwatch up: InfluxDB, collector, shipper, Prometheus, Alertmanager "
                 f"(state in {cfg.state_dir})")
        if not was_up and control.up(cfg) != 0:
            return 1
        demo.image_ready()
        demo.run_containers()
        demo.cmd(f"curl -s http://127.0.0.1:{demo.web_port}/   # traffic, 4 requests a second")
        traffic = Traffic(f"http://127.0.0.1:{demo.web_port}/")
        traffic.start()
        t0 = time.monotonic()
        demo.show_stats(max(3.0, min(15.0, demo.seconds * 0.4)))
        demo.show_alert(receiver, max(5.0, demo.seconds - (time.monotonic() - t0)) + 10)
        left = demo.seconds - (time.monotonic() - t0)
        if left > 0:
            demo.say(f"letting the containers run {left:.0f}s more")
            time.sleep(left)
        print(f"  web answered {traffic.ok} requests ({traffic.failed} failed)")
        time.sleep(2)  # one more collector interval and shipper batch
        demo.show_metrics()
        demo.show_logs()
        demo.next_steps(keep)
    finally:
        try:
            if traffic is not None:
                traffic.stop()
        finally:
            if not keep:
                demo.say("cleaning up: removing the containers, stopping the stack")
                try:
                    demo.cleanup()
                finally:
                    if not was_up:
                        control.down(cfg.state_dir)
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
