"""inotify for the collector's loop: each root's containers/ directory (recursive:
state files) and the cgroup directories discovery walks (not recursive: a new or removed
group). A change wakes the loop for a scan at once, so a tick only reads and the full
scan runs every ``rescan`` seconds as a safety net (``collector.pipeline``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from collector.discover import Discovery


class Watches:
    """The observer and its watches; ``stop`` ends them all."""

    def __init__(self, discovery: Discovery, wake: threading.Event) -> None:
        self.discovery = discovery
        self.wake = wake
        self.observer: Any = None  # watchdog's InotifyObserver, imported on start
        self.handler: Any = None
        self.group_watches: dict[str, object] = {}  # cgroup dir -> watchdog ObservedWatch
        self.root_watches: dict[str, tuple[str, object]] = {}  # root -> (watched dir, watch)

    def start(self) -> bool:
        """Start the observer and watch the roots; False when inotify cannot be used."""
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers.inotify import InotifyObserver
        except ImportError:
            return False
        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("created", "moved", "deleted", "closed"):
                    wake.set()

        self.handler = Wake()
        observer = InotifyObserver()
        observer.daemon = True
        observer.start()
        self.observer = observer
        if not self.roots():
            self.stop()
            return False
        return True

    def roots(self) -> bool:
        """Each root's containers/ recursively once it exists; until then the root itself
        (not recursively), whose wake-up for the new containers/ brings the loop here
        again before it scans. A root that does not exist yet is left to the rescans.
        False when inotify refuses a watch (its limits)."""
        observer, watches = self.observer, self.root_watches
        if observer is None:
            return True
        for root in self.discovery.roots:
            containers = str(root / "containers")
            want = containers if os.path.isdir(containers) else str(root)
            if watches.get(str(root), (None,))[0] == want:
                continue
            if not os.path.isdir(want):
                continue
            try:
                watch = observer.schedule(self.handler, want,
                                          recursive=want == containers)
            except OSError:
                return False
            old = watches.get(str(root))
            watches[str(root)] = (want, watch)
            if old is not None:
                with contextlib.suppress(KeyError, OSError):
                    observer.unschedule(old[1])
        return True

    def groups(self) -> bool:
        """Follow discovery's walked cgroup directories with non-recursive watches (a
        missing parent such as /docker is seen appearing in the hierarchy's root).
        False when inotify refused one (its limits): then every tick must scan."""
        observer, watches = self.observer, self.group_watches
        if observer is None:
            return True
        ok = True
        walked = self.discovery.walked
        for d in [d for d in watches if d not in walked]:
            try:
                observer.unschedule(watches.pop(d))
            except (KeyError, OSError):
                pass  # its directory went first
        for d in walked:
            if d not in watches:
                try:
                        watches[d] = observer.schedule(self.handler, d, recursive=False)
                except OSError:
                    ok = False
        return ok

    def stop(self) -> None:
        self.group_watches.clear()
        self.root_watches.clear()
        observer, self.observer = self.observer, None
        if observer is not None:
            observer.stop()
            observer.join(5)
