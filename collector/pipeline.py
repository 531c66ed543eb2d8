"""The collector's loop: discover, read every container, keep the latest and a short
history, derive events, hand each batch to the sinks. The only glue between sources and
sinks (sources never import sinks).

One reader per container holds its files open for the container's life; it is closed
when the container vanishes or its group is gone mid-read (skipped silently, counted),
so descriptors never grow with churn. New containers are picked up by the periodic scan
and sooner by inotify on the state directories.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from cgroupstats import ContainerGone, ParseError, Reader, open_reader
from cgroupstats.extras import GROUPS as EXTRA_GROUPS
from cgroupstats.extras import ExtrasReader, NetCache, Netlink
from cgroupstats.model import ContainerRef, Sample
from cgroupstats.net import NetNamespaces
from cgroupstats.oomkills import HostOomKills
from collector.discover import Discovery
from collector.events import EventTracker
from collector.history import History
from collector.journal import JournalSource
from collector.layers import LayerSizes
from collector.metrics.categories import DEFAULT
from collector.nofile import FD_HEADROOM, FDS_PER_CONTAINER, ensure_nofile
from collector.records import Event
from collector.sinks.base import Sink
from collector.watch import Watches

OPEN_TRIES = 5  # a group gone at open is tried again on this many ticks


@dataclass(slots=True)
class SelfStats:
    """The collector's own counters (exported as ``boxwatch_collector_*``)."""

    samples_total: int = 0
    read_errors_total: int = 0  # parse errors and unexpected OS errors
    gone_total: int = 0  # groups that vanished between scan and read: not errors
    containers: int = 0
    scan_duration_seconds: float = 0.0  # the last discovery scan
    read_duration_seconds: float = 0.0  # reading every container, the last interval
    ticks_total: int = 0


class Pipeline:
    """Owns the readers and the latest samples; ``tick`` is one interval's work."""

    def __init__(
        self,
        discovery: Discovery,
        sinks: Sequence[Sink] = (),
        *,
        cgroup_root: str = "/sys/fs/cgroup",
        proc_root: str = "/proc",
        interval: float = 1.0,
        jitter: float = 0.1,
        history: float = 300.0,
        spec_every: int = 60,
        rescan: float = 10.0,
        on_error: Callable[[str], None] | None = None,
        layers: LayerSizes | None = None,
        categories: Collection[str] = DEFAULT,
    ) -> None:
        self.discovery = discovery
        self.sinks = list(sinks)
        self.cgroup_root = cgroup_root
        self.proc_root = proc_root
        self.interval = interval
        self.jitter = jitter
        self.spec_every = spec_every
        self.rescan = rescan  # full discovery scan at least this often while inotify watches
        self.stats = SelfStats()
        self.latest: dict[str, Sample] = {}  # replaced whole each tick: safe to read anywhere
        # containers whose state file says running, read or not (``container_state_running``)
        self.running: dict[str, ContainerRef] = {}
        self.history = History(max(1, round(history / interval)) if history > 0 else 0)
        self.events = EventTracker()
        # box roots' own journal, where there is one; derived events for the rest
        self.journal = JournalSource(getattr(discovery, "roots", ()))
        self._readers: dict[str, Reader] = {}
        # cAdvisor's opt-in groups read beside the samples (cgroupstats.extras), if any
        self.extra_groups = frozenset(categories) & EXTRA_GROUPS
        self._extras: dict[str, ExtrasReader] = {}
        self._netlink: Netlink | None = None
        if "cpuLoad" in self.extra_groups:
            try:
                self._netlink = Netlink()
            except OSError:
                self._netlink = None  # no taskstats: task states from /proc instead
        self.net = NetNamespaces(proc_root)  # net/dev held once per network namespace
        self.oom = HostOomKills(proc_root)  # per-container OOM counters read when it moves
        # gone at open: (ref, opens tried); retried on the next ticks (a runtime creates a
        # group one controller at a time), then not until the ref changes
        self._dead: dict[str, tuple[ContainerRef, int]] = {}
        self._on_error = on_error or (lambda msg: None)
        self._errors_seen: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watches: Watches | None = None  # inotify, while ``run`` watches
        self._nofile = 0
        # called with each scan's refs (e.g. collector.alerts.OomWatcher.sync)
        self.on_scan: list[Callable[[dict[str, ContainerRef]], None]] = []
        # called with the containers each scan found ended (collector.alerts.OomWatcher.ended)
        self.on_exited: list[Callable[[list[ContainerRef]], None]] = []
        # writable layers, walked in their own thread; their last size goes into samples
        self.layers = layers
        if layers is not None:
            self.on_scan.append(layers.sync)

    # -- one interval -------------------------------------------------------------------

    def reconcile(self) -> list[Event]:
        """Scan discovery and open, rebind or close readers to match; the start/stop
        events this scan shows."""
        t0 = time.perf_counter()
        refs = self.discovery.scan()
        self.running = {cid: ref for cid, ref in refs.items() if ref.state_file}
        for hook in self.on_scan:
            hook(refs)
        if self.discovery.exited:
            for ended in self.on_exited:
                ended(self.discovery.exited)
        readers, dead = self._readers, self._dead
        for cid in [c for c in readers if c not in refs]:
            readers.pop(cid).close()
        for cid in [c for c in dead if c not in refs]:
            del dead[cid]
        if len(refs) * FDS_PER_CONTAINER + FD_HEADROOM > self._nofile:
            self._nofile = ensure_nofile(len(refs) * FDS_PER_CONTAINER + FD_HEADROOM)
        for cid, ref in refs.items():
            reader = readers.get(cid)
            if reader is not None:
                if reader.ref is not ref and reader.ref != ref:
                    try:
                        reader.rebind(ref)
                    except ContainerGone:
                        del readers[cid]
                        self.stats.gone_total += 1
                    except OSError as exc:  # EMFILE and the like: retried next scan
                        del readers[cid]
                        reader.close()
                        self.stats.read_errors_total += 1
                        self._report(cid, exc)
                continue
            failed = dead.get(cid)
            if failed is not None and failed[0] == ref and failed[1] >= OPEN_TRIES:
                continue
            self._open(cid, ref)
        self.stats.scan_duration_seconds = time.perf_counter() - t0
        self.stats.containers = len(readers)
        derived = self.events.scanned(refs, time.time_ns(), self.discovery.exited)
        return self._lifecycle(derived, refs)

    def _lifecycle(self, derived: list[Event], refs: dict[str, ContainerRef]) -> list[Event]:
        """The journal's events, and the derived ones of containers no journal covers."""
        journal = self.journal
        events = journal.poll(refs, self.discovery.exited)
        if not journal.covers_any():
            return derived + events
        return [e for e in derived if not journal.covers(e.ref)] + events

    def read_all(self) -> list[Sample]:
        """One sample of every open reader; vanished groups are dropped and counted."""
        t0 = time.perf_counter()
        self.net.advance()
        self.oom.advance()
        samples: list[Sample] = []
        append = samples.append
        gone: list[str] = []
        for cid, reader in self._readers.items():
            try:
                append(reader.read())
            except ContainerGone:
                gone.append(cid)
            except (ParseError, OSError) as exc:
                self.stats.read_errors_total += 1
                self._report(cid, exc)
        if self.layers is not None and self.layers.usage:
            usage = self.layers.usage.get
            for s in samples:
                s.writable_layer = usage(s.ref.id)
        if self.extra_groups:
            self._read_extras(samples)
        for cid in gone:
            reader = self._readers.pop(cid)
            reader.close()
            self._dead[cid] = (reader.ref, OPEN_TRIES)
            self.stats.gone_total += 1
        self.stats.samples_total += len(samples)
        self.stats.read_duration_seconds = time.perf_counter() - t0
        self.stats.containers = len(self._readers)
        return samples

    def _read_extras(self, samples: list[Sample]) -> None:
        """The opt-in groups of each sample, from one ExtrasReader per container, made
        anew when the container's ref changed and closed when it went."""
        extras = self._extras
        net_cache: NetCache = {}  # one reading of tcp/udp per network namespace and tick
        for s in samples:
            ref = s.ref
            ex = extras.get(ref.id)
            if ex is None or (ex.ref is not ref and ex.ref != ref):
                if ex is not None:
                    extras.pop(ref.id).close()
                try:
                    ex = extras[ref.id] = ExtrasReader(ref, self.extra_groups, self.interval,
                                                       self.proc_root, self._netlink)
                except (ContainerGone, OSError):
                    continue  # went meanwhile: its main reader finds out next tick
            s.extra = ex.read(s.cpu.usage_ns, net_cache)
        if len(extras) > len(samples):
            for cid in [c for c in extras if c not in self._readers]:
                extras.pop(cid).close()

    def _open(self, cid: str, ref: ContainerRef) -> None:
        try:
            self._readers[cid] = open_reader(ref, self.cgroup_root, self.proc_root,
                                             self.spec_every, self.net, self.oom)
            self._dead.pop(cid, None)
        except ContainerGone:
            failed = self._dead.get(cid)
            tries = failed[1] + 1 if failed is not None and failed[0] == ref else 1
            self._dead[cid] = (ref, tries)
            if tries == 1:
                self.stats.gone_total += 1
        except OSError as exc:  # EMFILE and the like: retried next scan
            self.stats.read_errors_total += 1
            self._report(cid, exc)

    def _retry_opens(self) -> None:
        """On a tick without a scan: groups found half-made are tried again."""
        for cid, (ref, tries) in list(self._dead.items()):
            if tries < OPEN_TRIES:
                self._open(cid, ref)

    def _report(self, cid: str, exc: Exception) -> None:
        """An error line once per container and kind, not once per interval."""
        key = f"{cid}:{type(exc).__name__}"
        if key not in self._errors_seen:
            self._errors_seen.add(key)
            self._on_error(f"collector: {cid[:12]}: {exc}")

    def tick(self, rescan: bool = True) -> list[Sample]:
        """Scan (unless ``rescan`` is False: inotify is watching), read, record, and hand
        the batch, its events and the containers whose state says running (whether or not
        they could be read) to every sink."""
        if rescan:
            events = self.reconcile()
        else:
            events = self._lifecycle([], self.running)  # the journal's, between scans
            if self._dead:
                self._retry_opens()
        running = list(self.running.values())
        now_ns = time.time_ns()
        samples = self.read_all()
        sampled = self.events.sampled(samples)  # OOM kills seen in the counters
        events.extend(self.journal.sampled(sampled))
        self.latest = {s.ref.id: s for s in samples}
        self.history.record(samples, self.latest)
        self.stats.ticks_total += 1
        for sink in self.sinks:
            sink.write_states(running, now_ns)  # first: a pull sink publishes both at write
            sink.write(samples)
            if events:
                sink.write_events(events)
        return samples

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Tick every interval (deadline-based, with jitter) until ``stop``.

        While inotify watches the state directories and the cgroup directories containers
        appear in, a change wakes the loop for a scan at once, so a tick only reads and
        the full scan (~5 us per container: a stat per state file, a walk of the groups)
        runs every ``rescan`` seconds as a safety net. Without inotify every tick scans."""
        watching = self._watch()
        next_at = next_scan = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                rescan = not watching or now >= next_scan
                if rescan:
                    next_scan = now + self.rescan
                self.tick(rescan)
                if watching and rescan:
                    self._watch_roots()  # a root that did not exist at the start
                    self._watch_groups()
                spread = self.interval * self.jitter
                next_at += self.interval + (random.uniform(-spread, spread) if spread else 0.0)
                now = time.monotonic()
                if next_at < now:  # fell behind (suspend, overload): don't burst
                    next_at = now
                while not self._stop.is_set():
                    if not self._wake.wait(max(0.0, next_at - time.monotonic())):
                        break
                    self._wake.clear()
                    if self._stop.is_set():
                        break
                    self._watch_roots()  # a root's containers/ may have just appeared
                    events = self.reconcile()
                    self._watch_groups()
                    if events:
                        for sink in self.sinks:
                            sink.write_events(events)
        finally:
            self._unwatch()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _watch(self) -> bool:
        """Start inotify (``collector.watch``); False when it cannot be used, and then
        every tick scans."""
        watches = Watches(self.discovery, self._wake)
        if not watches.start():
            return False
        self._watches = watches
        self.reconcile()  # the walk now lists the cgroup directories to watch
        self._watch_groups()
        return True

    def _watch_roots(self) -> bool:
        return self._watches.roots() if self._watches is not None else True

    def _watch_groups(self) -> None:
        if self._watches is not None and not self._watches.groups():
            self.rescan = 0.0  # cannot watch (inotify limits): scan every tick

    @property
    def _root_watches(self) -> dict[str, tuple[str, object]]:
        return self._watches.root_watches if self._watches is not None else {}

    def _unwatch(self) -> None:
        watches, self._watches = self._watches, None
        if watches is not None:
            watches.stop()

    # -- views --------------------------------------------------------------------------

    def find(self, key: str) -> str | None:
        """A container id from its name, full id, unique id prefix or cgroup path."""
        latest = self.latest
        if key in latest:
            return key
        for cid, s in latest.items():
            if s.ref.name == key or s.ref.cgroup == key:
                return cid
        matches = [cid for cid in latest if cid.startswith(key)]
        return matches[0] if len(matches) == 1 else None

    @property
    def open_files(self) -> int:
        return sum(r.open_files for r in self._readers.values()) + self.net.open_files

    def self_metrics(self) -> dict[str, object]:
        """What the Prometheus sink exports as ``boxwatch_collector_*``."""
        health = {s.name: s.health() for s in self.sinks}
        return {"stats": self.stats, "sinks": {k: v for k, v in health.items() if v}}

    def close(self) -> None:
        """Stop the loop and release every held file and every sink."""
        self.stop()
        self._unwatch()
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            reader.close()
        extras, self._extras = self._extras, {}
        for ex in extras.values():
            ex.close()
        if self._netlink is not None:
            self._netlink.close()
        self.net.close()
        self.oom.close()
        self.journal.close()
        if self.layers is not None:
            self.layers.close()
        for sink in self.sinks:
            sink.close()
