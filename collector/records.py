"""What the collector derives besides samples: container events (start, stop, die, OOM
kill, restart), made by ``collector.events`` between samples and taken by sinks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cgroupstats.model import ContainerRef

Action = Literal["start", "stop", "die", "oom_kill", "restart", "pause", "unpause"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a container, derived by the pipeline between samples.

    ``die`` carries the exit code from config.v2.json when the state file has it;
    ``stop`` is a container that went away without one.
    """

    time_ns: int
    ref: ContainerRef
    action: Action
    exit_code: int | None = None
