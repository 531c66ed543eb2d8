"""The small interface every collector sink implements (the records it takes, ``Sample``
and ``Event``, live in the model modules: ``cgroupstats.model``, ``collector.records``).

Like cAdvisor's storage drivers: a sink takes a batch of samples each interval and is
closed once. The pipeline owns the loop and never asks which sink it talks to; a sink
reports its own counters through ``health`` so the collector can export them as
``boxwatch_collector_sink_*``. ``write`` must not raise for a server that is down: it
buffers, counts, and retries on its own schedule.
"""

from __future__ import annotations

from argparse import ArgumentParser, Namespace

from cgroupstats.model import ContainerRef, Sample
from collector.records import Event

# The counters every sink's ``health`` returns (a sink may add more keys).
HEALTH_KEYS = ("written", "write_errors", "buffered_points", "dropped_points")


def add_arguments(parser: ArgumentParser) -> None:
    """The shape of the hook a sink module offers for its own flags (``--influx-url``...);
    ``collector.cli.SINK_OPTIONS`` lists the modules whose hook is called."""
    return None


class Sink:
    """Base of all sinks. ``name`` identifies it in health metrics (e.g. "influxdb-v1")."""

    name: str = "sink"

    @classmethod
    def from_args(cls, url: str, args: Namespace) -> Sink:
        """Build the sink from ``--sink KIND=URL`` and the parsed collector options (the
        sink's own flags, added by its module's ``add_arguments``). SinkError if unusable."""
        raise NotImplementedError

    def write(self, samples: list[Sample]) -> None:
        """Take this interval's samples (one per container). Must not block for long."""
        raise NotImplementedError

    def write_events(self, events: list[Event]) -> None:
        """Take the events derived this interval; most sinks ignore them."""
        return None

    def write_states(self, refs: list[ContainerRef], time_ns: int) -> None:
        """Take the containers whose state file says running this interval, sampled or
        not (``container_state_running`` / ``container_state``); called just before
        ``write`` of the same interval. Most sinks ignore them."""
        return None

    def health(self) -> dict[str, float]:
        """Counters for the collector's own metrics: at least the ``HEALTH_KEYS`` (a pull
        sink with nothing to buffer returns {} and is left out of them)."""
        return dict.fromkeys(HEALTH_KEYS, 0.0)

    def close(self) -> None:
        """Flush what can be flushed quickly and release connections; called once."""
        return None
