"""The instant OOM alert: notice an OOM kill the moment the kernel does it and POST it to
``--alert-webhook`` at once, instead of waiting for a scrape, a rule evaluation and a
notification policy (15 s and more).

One thread runs one epoll loop over
- cgroup v1: an eventfd per container registered through ``cgroup.event_control`` on
  ``memory.oom_control`` (the kernel signals it at the OOM, and when the group goes);
- cgroup v2: one inotify descriptor watching each container's ``memory.events`` for
  ``IN_MODIFY`` (kernfs notifies on every counter change);
- a wake eventfd for ``close``.
A wake-up rereads the ``oom_kill`` counter; only a rise is a kill. The alert carries the
container, its memory limit, its peak usage and its last log lines, and goes to a small
sender thread (``collector.alert_sender``) so a slow receiver never delays noticing the
next kill.

The set of containers comes from the pipeline's scans (``sync(refs)``). A container
killed before its first scan (an instant hog) is caught at registration: a non-zero
counter on a container started in the last ``FRESH_SECONDS`` is alerted at once. One
that started and was killed between two scans never gets a watch: its state file
(``OOMKilled``, handed over by the scan, ``ended``) says it, or, where the engine did not
record it, the kernel's ``oom-kill:`` line for its group (``cgroupstats.kmsg``).
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cgroupstats.kmsg import KmsgOomKills
from cgroupstats.model import ContainerRef
from collector.alert_logs import LOG_LINES, log_path, tail_log
from collector.alert_sender import AlertError, OomAlert, Sender, payload
from collector.events import read_state
from collector.inotify import Inotify

# The delivery side lives in collector.alert_sender, the log tail an alert carries in
# collector.alert_logs; callers know these names from here.
__all__ = ["LOG_LINES", "AlertError", "OomAlert", "OomWatcher", "Sender", "add_arguments",
           "from_args", "log_path", "payload", "tail_log"]

FRESH_SECONDS = 30.0
RECHECK_STEP = 0.001  # seconds between rereads after a wake-up without a rise
RECHECK_FOR = 2.0  # how long such a wake-up is followed up


def _read_int(path: str) -> int:
    """A one-number cgroup file; 0 for "max", absent or unreadable."""
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
    except OSError:
        return 0
    value = int(text) if text.isdigit() else 0
    return 0 if value >= 1 << 62 else value  # v1 "unlimited" is 2^63 rounded to pages


def _oom_kill(data: bytes) -> int:
    """``oom_kill N`` from memory.oom_control (v1) or memory.events (v2)."""
    for line in data.splitlines():
        if line.startswith(b"oom_kill "):
            return int(line.split()[1])
    return 0


# -- watching -------------------------------------------------------------------------


@dataclass(slots=True)
class _Watch:
    ref: ContainerRef
    counter_fd: int  # memory.oom_control (v1) / memory.events (v2), read with pread
    event_fd: int  # v1 eventfd; -1 on v2
    wd: int  # v2 inotify watch; -1 on v1
    kills: int
    limit_file: str
    peak_file: str


class OomWatcher:
    """Watches every synced container for OOM kills and hands alerts to ``sender``."""

    def __init__(self, sender: Sender | Callable[[OomAlert], None], host: str | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._send = sender.put if isinstance(sender, Sender) else sender
        self.sender = sender if isinstance(sender, Sender) else None
        self.host = host or socket.gethostname()
        self.alerts = 0
        self._on_error = on_error or (lambda msg: None)
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._ever_watched: dict[str, None] = {}  # ids a watch had its chance on (bounded)
        self._by_fd: dict[int, _Watch] = {}  # eventfd -> watch (v1)
        self._by_wd: dict[int, _Watch] = {}  # inotify wd -> watch (v2)
        self._epoll = select.epoll()
        self._inotify: Inotify | None = None
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="boxwatch-oom-watch", daemon=True)
        self._kmsg = KmsgOomKills.open()  # None without /dev/kmsg (not root)

    # -- the set of containers (called from the pipeline's thread) -------------------------

    def sync(self, refs: Mapping[str, ContainerRef]) -> None:
        """Watch what ``refs`` holds and nothing else; a changed ref is watched anew."""
        with self._lock:
            for cid in [c for c in self._watches if c not in refs]:
                self._drop(self._watches[cid])
            for cid, ref in refs.items():
                old = self._watches.get(cid)
                if old is not None and (old.ref is ref or old.ref == ref):
                    continue
                if old is not None:
                    if old.ref.cgroup_paths == ref.cgroup_paths:
                        old.ref = ref  # metadata changed (state file rewritten): same group
                        continue
                    self._drop(old)
                self._add(ref)

    def ended(self, refs: Iterable[ContainerRef]) -> None:
        """Containers whose state file now says they ended (``Discovery.exited``): one
        that was OOM-killed and never watched (it lived less than a scan interval) is
        alerted here; its group is gone, so limit and peak are unknown (0)."""
        for ref in refs:
            with self._lock:
                if ref.id in self._ever_watched:
                    continue
                self._ever_watched[ref.id] = None
            state = read_state(ref.state_file)
            killed = state is not None and state.get("OOMKilled")
            if not killed and self._kmsg is not None:  # Docker may not say it: the kernel
                killed = self._kmsg.killed(ref.cgroup, ref.id) is not None
            if killed:
                alert = OomAlert(time.time_ns(), ref, self.host, 1, 0, 0, tail_log(log_path(ref)))
                self.alerts += 1
                self._send(alert)

    def _add(self, ref: ContainerRef) -> None:
        try:
            watch = self._open_v1(ref) if ref.cgroup_version == 1 else self._open_v2(ref)
        except OSError as exc:  # gone between scan and now, or no memory controller
            if exc.errno not in (2, 19):  # ENOENT, ENODEV
                self._on_error(f"collector: cannot watch {ref.name or ref.id[:12]} for OOM: {exc}")
            return
        if watch is None:
            return
        self._watches[ref.id] = watch
        self._ever_watched[ref.id] = None
        if len(self._ever_watched) > 8192:
            for cid in list(self._ever_watched)[:2048]:
                del self._ever_watched[cid]
        if watch.kills and ref.started_at and time.time() - ref.started_at < FRESH_SECONDS:
            self._alert(watch, watch.kills)  # killed before its first scan

    def _open_v1(self, ref: ContainerRef) -> _Watch | None:
        mem = ref.cgroup_paths.get("memory")
        if not mem:
            return None
        counter = os.open(f"{mem}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        efd = -1
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            with open(f"{mem}/cgroup.event_control", "w") as ctl:
                ctl.write(f"{efd} {counter}")
            kills = _oom_kill(os.pread(counter, 4096, 0))
        except OSError:
            os.close(counter)
            if efd >= 0:
                os.close(efd)
            raise
        watch = _Watch(ref, counter, efd, -1, kills, f"{mem}/memory.limit_in_bytes",
                       f"{mem}/memory.max_usage_in_bytes")
        self._by_fd[efd] = watch
        self._epoll.register(efd, select.EPOLLIN)
        return watch

    def _open_v2(self, ref: ContainerRef) -> _Watch | None:
        d = ref.unified_path
        if not d or not os.path.exists(f"{d}/memory.events"):
            return None  # no memory controller in this group: nothing to watch
        if self._inotify is None:
            self._inotify = Inotify()
            self._epoll.register(self._inotify.fd, select.EPOLLIN)
        counter = os.open(f"{d}/memory.events", os.O_RDONLY | os.O_CLOEXEC)
        try:
            wd = self._inotify.add(f"{d}/memory.events")
            kills = _oom_kill(os.pread(counter, 4096, 0))
        except OSError:
            os.close(counter)
            raise
        watch = _Watch(ref, counter, -1, wd, kills, f"{d}/memory.max", f"{d}/memory.peak")
        self._by_wd[wd] = watch
        return watch

    def _drop(self, watch: _Watch) -> None:
        self._watches.pop(watch.ref.id, None)
        if watch.event_fd >= 0:
            self._by_fd.pop(watch.event_fd, None)
            try:
                self._epoll.unregister(watch.event_fd)
            except (OSError, ValueError):
                pass
            os.close(watch.event_fd)  # closing the eventfd removes the kernel's listener
        if watch.wd >= 0 and self._inotify is not None:
            self._by_wd.pop(watch.wd, None)
            self._inotify.remove(watch.wd)
        os.close(watch.counter_fd)

    # -- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        self._thread.start()

    def _run(self) -> None:
        pending: dict[str, float] = {}  # id -> recheck deadline (woken before the count rose)
        while not self._stop:
            try:
                ready = self._epoll.poll(RECHECK_STEP if pending else -1)
            except InterruptedError:
                continue
            with self._lock:
                woken: list[_Watch] = []
                for fd, _mask in ready:
                    if fd == self._wake:
                        continue
                    if self._inotify is not None and fd == self._inotify.fd:
                        woken.extend(w for wd in self._inotify.read()
                                     if (w := self._by_wd.get(wd)) is not None)
                        continue
                    watch = self._by_fd.get(fd)
                    if watch is not None:
                        try:
                            os.eventfd_read(fd)
                        except BlockingIOError:
                            pass
                        woken.append(watch)
                now = time.monotonic()
                for watch in woken:
                    if not self._check(watch):
                        pending.setdefault(watch.ref.id, now + RECHECK_FOR)
                for cid, deadline in list(pending.items()):
                    watch = self._watches.get(cid)
                    if watch is None or self._check(watch) or now > deadline:
                        del pending[cid]

    def _check(self, watch: _Watch) -> bool:
        """Reread the counter: True when it rose (alerted) or the group is gone.

        v1 signals the eventfd when the group enters OOM, a moment before the victim is
        chosen and ``oom_kill`` counts it, so a wake-up without a rise is rechecked for a
        short while (``RECHECK_FOR``) rather than dismissed."""
        try:
            kills = _oom_kill(os.pread(watch.counter_fd, 4096, 0))
        except OSError:  # the group was removed (v1 signals the eventfd for that too)
            self._drop(watch)
            return True
        if kills > watch.kills:
            self._alert(watch, kills)
            return True
        return False

    def _alert(self, watch: _Watch, kills: int) -> None:
        now = time.time_ns()
        watch.kills = kills
        ref = watch.ref
        alert = OomAlert(now, ref, self.host, kills, _read_int(watch.limit_file),
                         _read_int(watch.peak_file), tail_log(log_path(ref)))
        self.alerts += 1
        self._send(alert)

    def close(self) -> None:
        """Stop the loop, release every descriptor, and flush the sender."""
        self._stop = True
        os.eventfd_write(self._wake, 1)
        if self._thread.is_alive():
            self._thread.join(5)
        with self._lock:
            for watch in list(self._watches.values()):
                self._drop(watch)
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
        self._epoll.close()
        os.close(self._wake)
        if self._kmsg is not None:
            self._kmsg.close()
        if self.sender is not None:
            self.sender.close()

    @property
    def watched(self) -> int:
        return len(self._watches)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alert-webhook", default=os.environ.get("BOXWATCH_ALERT_WEBHOOK", ""),
                        metavar="URL",
                        help="POST an alert the moment a container is OOM-killed: Alertmanager "
                             "when the URL ends with /api/v2/alerts, else plain JSON "
                             "(or $BOXWATCH_ALERT_WEBHOOK)")
    parser.add_argument("--alert-timeout", type=float, default=5.0,
                        help="seconds per webhook request (5)")


def from_args(args: argparse.Namespace,
              on_error: Callable[[str], None] | None = None) -> OomWatcher | None:
    """The watcher ``--alert-webhook`` asks for, or None; AlertError for a bad URL."""
    url = getattr(args, "alert_webhook", "") or ""
    if not url:
        return None
    sender = Sender(url, timeout=float(getattr(args, "alert_timeout", 5.0)), on_error=on_error)
    return OomWatcher(sender, host=getattr(args, "host", "") or None, on_error=on_error)
