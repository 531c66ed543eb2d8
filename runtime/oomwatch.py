"""Every OOM kill in a running container, when it happens: docker's ``oom`` event.

moby (daemon/monitor.go, EventOOM) hears of each OOM in the container's memory cgroup
from containerd's watcher, whether the victim is PID 1 or any other process, sets
``State.OOMKilled`` at once (cleared by the next start: moby 57d2d6ef, Docker 23) and
logs ``oom``. The monitor's death-time look at the counter saw only the kills of PID 1's
death, so this watcher runs beside the copy loop for one run of the container:

- a small thread (``_thread``: ``threading``'s import is ~1 ms of ``box run``'s path)
  waits in ``poll`` on the driver's notification fd (v1: an eventfd registered on
  ``memory.oom_control``; v2: inotify on ``memory.events``) and on a stop pipe;
- a wake rereads the driver's ``oom_kills`` counter, and each rise is one kill: one
  state update and one ``oom`` line in the journal. v1 signals *before* its OOM killer
  picks a victim, so after a wake the counter is read again a few times over ~1 s;
- where the host cannot notify (no memory controller, a kernel without the eventfd
  registration) the counter is polled every ``POLL_MS``: one small file read;
- ``stop()`` (PID 1 reaped) joins the thread and reads the counter a last time, so a
  kill it had not seen yet is journaled before the monitor's ``die``, and none twice.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import select

from runtime.journal import container_event

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

    from runtime.cgroups.driver import Driver
    from runtime.state import Store

POLL_MS = 1000  # without notification: how often the counter is read
RECHECK_MS = (5, 10, 20, 50, 100, 250, 500)  # after a wake: v1 counts the kill after it


class OomWatch:
    """Journals the OOM kills of one run of a container from ``before`` (the counter at
    its start) on; ``stop()`` returns how many there were."""

    def __init__(self, store: Store, driver: Driver, paths: dict[str, str], before: int,
                 cfg: dict[str, Any]) -> None:
        self.store = store
        self.driver = driver
        self.paths = paths
        self.cfg = cfg  # the running container's, for the event if its state is gone
        self.before = self.seen = before
        self.notifying = True
        self._lock = _thread.allocate_lock()  # one reader of the counter at a time
        self._done = _thread.allocate_lock()  # held while the thread runs
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._fd = driver.oom_events(paths)
        except OSError as e:
            self._fd = -1
            self.notifying = False
            os.write(2, f"box monitor: OOM kills polled every {POLL_MS} ms: {e}\n".encode())
        self._done.acquire()
        try:
            _thread.start_new_thread(self._run, ())
        except BaseException:
            self._done.release()
            self._close()
            raise

    def stop(self) -> int:
        """The run ended: stop the thread, journal any kill not seen yet; the kills."""
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        with self._done:
            pass
        self.check()
        self._close()
        return self.seen - self.before

    def check(self) -> int:
        """Read the counter; journal each kill since the last read; how many."""
        with self._lock:
            try:
                count = self.driver.oom_kills(self.paths)
            except (OSError, ValueError):
                return 0
            new = count - self.seen
            self.seen = max(self.seen, count)
            for _ in range(new):
                self._killed()
            return max(new, 0)

    def _killed(self) -> None:
        """moby's order: State.OOMKilled true (checkpointed), then the ``oom`` event."""
        cfg = self.cfg
        try:
            cfg = self.store.update(cfg["ID"], OOMKilled=True, durable=False)
        except Exception as e:  # removed under us: the event still says it
            os.write(2, f"box monitor: OOMKilled not recorded: {e}\n".encode())
        container_event(self.store.paths.root, cfg, "oom")

    def _run(self) -> None:
        try:
            poller = select.poll()
            poller.register(self._stop_r, select.POLLIN)
            if self._fd >= 0:
                poller.register(self._fd, select.POLLIN)
            self.check()  # kills between the baseline and the registration
            retry = len(RECHECK_MS)
            while True:
                if self._fd < 0:
                    timeout: int | None = POLL_MS
                else:
                    timeout = RECHECK_MS[retry] if retry < len(RECHECK_MS) else None
                ready = [fd for fd, _ in poller.poll(timeout)]
                if self._stop_r in ready:
                    return
                if self._fd in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._fd, 4096)  # eventfd: 8 bytes; inotify: its records
                    retry = 0
                elif retry < len(RECHECK_MS):
                    retry += 1
                self.check()
        except Exception as e:  # the death-time check in stop() still counts the kills
            with contextlib.suppress(OSError):
                os.write(2, f"box monitor: OOM watch ended: {e!r}\n".encode())
        finally:
            self._done.release()

    def _close(self) -> None:
        for fd in (self._fd, self._stop_r, self._stop_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._stop_r = self._stop_w = -1
