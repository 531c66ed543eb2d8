"""Docker's HEALTHCHECK: the ``--health-*`` flags merged over the image's check, and the
probe loop the container's monitor runs in a thread while the container runs.

Each probe is the check's command run inside the container like ``box exec`` (its
namespaces, cgroup, environment, user and working directory), killed at the timeout.
Its result goes into ``State.Health`` (``Status``, ``FailingStreak``, the last five
``Log`` entries) under the container's lock, with moby's rules (daemon/health.go):
exit 0 is healthy and resets the streak; any other code, a timeout (-1) or a probe that
could not start (-1) is a failure; ``Retries`` failures in a row make it unhealthy;
failures inside the start period do not count until a probe has succeeded. When the
container stops the status becomes "unhealthy", as docker's does.

Imported only when a container has a healthcheck (or ``box create`` a ``--health-*``
flag): ``box run`` without one loads nothing of this.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

from formats.units import parse_duration_ns, parse_rfc3339, rfc3339nano
from runtime.errors import BoxError, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.state import Store

_MS = 1_000_000
_S = 1_000 * _MS
DEFAULT_INTERVAL = 30 * _S
DEFAULT_TIMEOUT = 30 * _S
DEFAULT_START_INTERVAL = 5 * _S
DEFAULT_RETRIES = 3
MIN_DURATION = _MS  # moby's container.MinimumDuration
MAX_LOG = 5
MAX_OUTPUT = 4096

# flag -> (HealthConfig key, is a duration)
_FLAGS = {"--health-interval": ("Interval", True), "--health-timeout": ("Timeout", True),
          "--health-start-period": ("StartPeriod", True),
          "--health-start-interval": ("StartInterval", True),
          "--health-retries": ("Retries", False)}


# -- configuration -------------------------------------------------------------------
def _go_duration(flag: str, text: str) -> int:
    """pflag's DurationVar: Go's syntax, sign and bare "0" included; its messages."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body == "0":
        return 0
    try:
        return sign * parse_duration_ns(body)
    except ValueError:
        why = "missing unit in" if body.replace(".", "", 1).isdigit() else "invalid"
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: '
                              f'time: {why} duration "{text}"') from None


def _flag_values(opts: Any) -> dict[str, int]:
    out = {}
    for flag, (key, duration) in _FLAGS.items():
        text = getattr(opts, flag[2:].replace("-", "_"), None)
        if text in (None, ""):
            continue
        if duration:
            out[key] = _go_duration(flag, text)
            continue
        try:
            out[key] = int(text)
        except ValueError:
            raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: '
                                  f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    return out


def healthcheck_config(opts: Any, image_check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Config.Healthcheck from the flags over the image's, as docker's CLI builds it and
    its daemon merges and validates it; a bad value raises InvalidArgument naming it."""
    values = _flag_values(opts)
    cmd = getattr(opts, "health_cmd", None)
    if getattr(opts, "no_healthcheck", False):
        if cmd or any(values.values()):
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not cmd and not any(values.values()):
        return dict(image_check) if image_check else None
    for flag, (key, _) in _FLAGS.items():
        if values.get(key, 0) < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
    merged: dict[str, Any] = {"Test": ["CMD-SHELL", cmd] if cmd else []}
    merged.update({k: v for k, v in values.items() if v})
    for key, value in (image_check or {}).items():
        if not merged.get(key):  # docker's merge: a zero field takes the image's value
            merged[key] = value
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        if 0 < merged.get(key, 0) < MIN_DURATION:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms "
                                  f"({go_duration_string(merged[key])})")
    return {k: v for k, v in merged.items() if v}  # omitempty, as docker marshals it


def probe_args(check: dict[str, Any] | None, config: dict[str, Any]) -> list[str] | None:
    """The probe's argv (CMD as is, CMD-SHELL through the shell), None for NONE/unknown."""
    test = list((check or {}).get("Test") or [])
    if not test:
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return [*(config.get("Shell") or ["/bin/sh", "-c"]), *test[1:]] if test[1:] else None
    return None


def go_duration_string(ns: int) -> str:
    """Go's ``time.Duration.String``: "200ms", "30s", "1.5s", "2m0s", "1h0m0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)

    def frac(n: int, unit: int) -> str:
        whole, rest = divmod(n, unit)
        digits = f"{rest:0{len(str(unit)) - 1}d}".rstrip("0") if rest else ""
        return f"{whole}.{digits}" if digits else str(whole)

    if ns < _S:
        for suffix, unit in (("ms", _MS), ("µs", 1_000), ("ns", 1)):
            if ns >= unit:
                return sign + frac(ns, unit) + suffix
    hours, rest = divmod(ns, 3600 * _S)
    minutes, rest = divmod(rest, 60 * _S)
    text = frac(rest, _S) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    return f"{sign}{minutes}m{text}" if minutes else sign + text


# -- the probe loop ------------------------------------------------------------------
class HealthChecker:
    """One run of the container: probes until ``stop`` or until PID 1 exits."""

    def __init__(self, store: Store, cfg: dict[str, Any], driver: Any) -> None:
        from runtime.enter import Process

        self.store = store
        self.cfg = cfg
        self.cid = cfg["ID"]
        self.driver = driver
        check = cfg["Config"].get("Healthcheck") or {}
        args = probe_args(check, cfg["Config"])
        if args is None:
            raise ValueError("no runnable healthcheck")
        self.interval = check.get("Interval") or DEFAULT_INTERVAL
        self.timeout = check.get("Timeout") or DEFAULT_TIMEOUT
        self.start_period = check.get("StartPeriod") or 0
        self.start_interval = check.get("StartInterval") or DEFAULT_START_INTERVAL
        self.retries = check.get("Retries") if (check.get("Retries") or 0) > 0 else DEFAULT_RETRIES
        self.started_ns = parse_rfc3339(cfg["State"]["StartedAt"])
        from runtime.spec import sandbox_spec

        spec = sandbox_spec(store.paths, cfg)
        # moby's probe is an exec: the container's env, user and workdir, and its
        # confinement (capabilities, seccomp program, no_new_privs), never more.
        self.proc = Process(args, list(spec.env), cfg["Config"].get("User") or "",
                            cfg["Config"].get("WorkingDir") or "/", list(spec.caps),
                            spec.privileged, False, spec.seccomp, spec.no_new_privs)
        old = cfg["State"].get("Health") or {}
        self.status = "starting"
        self.streak = 0
        self.log: list[dict[str, Any]] = list(old.get("Log") or [])  # kept across restarts
        self.pid = cfg["State"]["Pid"]
        self.pid1 = os.pidfd_open(self.pid)  # first: if PID 1 is gone, nothing is left open
        self.stop_r, self.stop_w = os.pipe2(os.O_CLOEXEC)
        self.thread: Any = None

    def start(self) -> None:
        """Record "starting" (before the starting command hears of the container), then
        probe in a thread."""
        import threading

        self._write()
        self.thread = threading.Thread(target=self._run, name=f"health-{self.cid[:12]}",
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Kill a probe in flight, wait for the thread, record "unhealthy"."""
        with contextlib.suppress(OSError):
            os.write(self.stop_w, b"x")
        if self.thread is not None:
            self.thread.join()
        for fd in (self.stop_r, self.stop_w, self.pid1):
            os.close(fd)

    # -- in the thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._wait(self._next_interval()):
                result = self._probe()
                if result is None:
                    break
                self._record(result)
        except BoxError as e:  # the container's record is gone (removed under us)
            os.write(2, f"box monitor {self.cid[:12]}: healthcheck: {e}\n".encode())
        finally:
            self.status = "unhealthy"  # moby: unhealthy once the monitor has stopped
            with contextlib.suppress(BoxError):
                self._write()

    def _next_interval(self) -> int:
        """moby's getInterval: the start interval while starting inside the start period,
        and a probe right when the start period ends."""
        elapsed = time.time_ns() - self.started_ns
        if elapsed >= self.start_period:
            return self.interval
        remaining = self.start_period - elapsed
        if remaining < self.interval:
            return remaining
        return self.start_interval if self.status == "starting" else self.interval

    def _stopping(self, timeout: float | None = 0) -> bool:
        ready, _, _ = select.select([self.stop_r, self.pid1], [], [], timeout)
        return bool(ready)

    def _exiting(self) -> bool:
        """PID 1 is exiting: its namespaces are gone before its pidfd turns readable (the
        kernel first kills the rest of its pid namespace, a probe included)."""
        try:
            os.stat(f"/proc/{self.pid}/ns/mnt")
        except OSError:
            return True
        return False

    def _wait(self, ns: int) -> bool:
        """Sleep ``ns``; True when asked to stop or PID 1 exited meanwhile."""
        return self._stopping(ns / 1e9)

    def _probe(self) -> dict[str, Any] | None:
        """One run of the check; None when stopped meanwhile (the result is dropped)."""
        from runtime.enter import spawn

        start = time.time_ns()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, err_r = spawn(self.cfg, self.proc, (null, out_w, out_w), "handoff",
                               self.driver)
        finally:
            os.close(out_w)
            os.close(null)
        output = _Output()
        try:
            code, timed_out, stopped = (
                self._await(pid, out_r, output) if pid else (-1, False, False)
            )
            failure = _read_all(err_r)
        finally:
            os.close(out_r)
            os.close(err_r)
        if stopped:
            return None
        text = output.text()
        if timed_out:
            limit = go_duration_string(self.timeout)
            code, text = (
                -1,
                f"Health check exceeded timeout ({limit})" + (f": {text}" if text else ""),
            )
        elif failure:  # could not run: moby records the exec error with -1
            code, text = -1, failure.decode(errors="replace").partition("\n")[2]
        return {"Start": start, "End": time.time_ns(), "ExitCode": code, "Output": text}

    def _await(self, pid: int, out_r: int, output: _Output) -> tuple[int, bool, bool]:
        """Collect output until the probe exits; kill it at the timeout or on stop.
        Returns (exit code, timed out, stopped)."""
        pidfd = os.pidfd_open(pid)
        deadline = time.monotonic() + self.timeout / 1e9
        timed_out = stopped = False
        try:
            watch = [out_r, pidfd, self.stop_r, self.pid1]
            while True:
                left = deadline - time.monotonic()
                ready = select.select(watch, [], [], max(0.0, left))[0] if left > 0 else []
                if out_r in ready and not output.read(out_r):
                    watch.remove(out_r)
                if pidfd in ready:
                    break
                if self.stop_r in ready or self.pid1 in ready or not ready:
                    stopped, timed_out = bool(ready), not ready
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)  # and what it forked
                    break
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(pidfd)
        os.set_blocking(out_r, False)
        with contextlib.suppress(BlockingIOError):
            while output.read(out_r):
                pass
        code = os.waitstatus_to_exitcode(status)
        return (code if code >= 0 else 128 - code), timed_out, stopped

    def _record(self, result: dict[str, Any]) -> None:
        """moby's handleProbeResult."""
        if self._stopping() or self._exiting():  # stopped while probing: dropped
            return
        before = self.status
        self.log = [*self.log, {**result, "Start": rfc3339nano(result["Start"]),
                                "End": rfc3339nano(result["End"])}][-MAX_LOG:]
        if result["ExitCode"] == 0:
            self.streak = 0
            self.status = "healthy"
        elif not (self.status == "starting"
                  and result["Start"] - self.started_ns < self.start_period):
            self.streak += 1
            if self.streak >= self.retries:
                self.status = "unhealthy"
        cfg = self._write()
        if self.status != before:  # moby's handleProbeResult: an event on each change
            from runtime.journal import container_event

            container_event(self.store.paths.root, cfg, f"health_status: {self.status}")

    def _write(self) -> dict[str, Any]:
        return self.store.update(self.cid, Health={"Status": self.status,
                                                   "FailingStreak": self.streak, "Log": self.log})


class _Output:
    """The first MAX_OUTPUT bytes of the probe's stdout+stderr, "..." if there was more."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.truncated = False

    def read(self, fd: int) -> bool:
        data = os.read(fd, 65536)
        keep = max(0, min(len(data), MAX_OUTPUT - len(self.buf)))
        self.buf += data[:keep]
        self.truncated |= keep < len(data)
        return bool(data)

    def text(self) -> str:
        return self.buf.decode(errors="replace") + ("..." if self.truncated else "")


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data
