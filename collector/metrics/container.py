"""The families cAdvisor exports whatever the switches (last seen, health, creation and
start time, the spec), its ``pressure`` group, and ours beside them
(``container_restarts_total``)."""

from __future__ import annotations

from collections.abc import Callable

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, US, Family, attr, fams

HEALTH = {"healthy": 1.0, "": -1.0}  # cAdvisor: healthy 1, no healthcheck -1, else 0


def _psi(kind: str, line: str) -> Callable[[Sample], float | None]:
    def get(s: Sample) -> float | None:
        psi = getattr(s.psi, kind)
        return None if psi is None else getattr(psi, line).total_us * US

    return get


def families() -> dict[str, list[Family]]:
    g = GAUGE
    return {
        "always": fams(
            ("container_last_seen", g, "Last time a container was seen by the exporter", (),
             lambda s: s.timestamp_ns // 1_000_000_000),
            ("container_health_state", g, "The result of the container's health check", (),
             lambda s: HEALTH.get(s.ref.health, 0.0)),
            ("container_creation_time_seconds", g,
             "Container creation time since unix epoch in seconds.", (),
             lambda s: s.ref.created_at or None),
            ("container_start_time_seconds", g,
             "Start time of the container since unix epoch in seconds.", (),
             lambda s: s.ref.started_at or None),
            ("container_spec_cpu_period", g, "CPU period of the container.", (),
             attr("spec.cpu_period_us")),
            ("container_spec_cpu_quota", g, "CPU quota of the container.", (),
             lambda s: s.spec.cpu_quota_us or None),
            ("container_spec_cpu_shares", g, "CPU share of the container.", (),
             attr("spec.cpu_shares")),
            ("container_spec_memory_limit_bytes", g, "Memory limit for the container.", (),
             attr("spec.memory_limit")),
            ("container_spec_memory_swap_limit_bytes", g, "Memory swap limit for the container.",
             (), attr("spec.swap_limit")),
            ("container_spec_memory_reservation_limit_bytes", g,
             "Memory reservation limit for the container.", (), attr("spec.memory_reservation")),
            ("container_restarts_total", COUNTER,
             "Number of times the container was restarted (Docker's RestartCount).", (),
             attr("ref.restart_count")),
        ),
        "pressure": fams(
            ("container_pressure_cpu_stalled_seconds_total", COUNTER,
             "Total time duration no tasks in the container could make progress due to CPU "
             "congestion.", (), _psi("cpu", "full")),
            ("container_pressure_cpu_waiting_seconds_total", COUNTER,
             "Total time duration tasks in the container have waited due to CPU congestion.",
             (), _psi("cpu", "some")),
            ("container_pressure_memory_stalled_seconds_total", COUNTER,
             "Total time duration no tasks in the container could make progress due to memory "
             "congestion.", (), _psi("memory", "full")),
            ("container_pressure_memory_waiting_seconds_total", COUNTER,
             "Total time duration tasks in the container have waited due to memory "
             "congestion.", (), _psi("memory", "some")),
            ("container_pressure_io_stalled_seconds_total", COUNTER,
             "Total time duration no tasks in the container could make progress due to IO "
             "congestion.", (), _psi("io", "full")),
            ("container_pressure_io_waiting_seconds_total", COUNTER,
             "Total time duration tasks in the container have waited due to IO congestion.",
             (), _psi("io", "some")),
        ),
    }
