"""cAdvisor's ``disk`` and ``diskIO`` families.

disk: the writable layer (``collector.layers``, moby's SizeRw, what ``docker ps -s``
shows) as ``container_fs_usage_bytes``, and its filesystem's capacity and inodes.

diskIO: blkio (v1) / io.stat (v2) per device. A counter the kernel does not write is no
series (``IoStats.has``): the throttle layer (every v1 kernel) writes bytes and ops per
operation; merged requests, service time and queue length only cfq/bfq (with their
stats); io.cost's cost.* only with iocost enabled. The sector and weighted-time
families come from /proc/diskstats in cAdvisor, for the machine's root container only,
so a container never has a series of them there either.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from cgroupstats.model import Sample
from collector.metrics.base import COUNTER, GAUGE, NS, US, Family, Values, fams, only_when

Devices = Callable[[str], str]


class DeviceNames:
    """"8:0" -> "/dev/sda" from ``<sys>/dev/block/8:0/uevent`` (cAdvisor's ``device``
    label is the device path); the major:minor itself when unknown. Cached."""

    def __init__(self, sys_root: str = "/sys") -> None:
        self.sys_root = sys_root
        self._names: dict[str, str] = {}

    def __call__(self, majmin: str) -> str:
        name = self._names.get(majmin)
        if name is None:
            name = majmin
            try:
                with open(f"{self.sys_root}/dev/block/{majmin}/uevent") as f:
                    for line in f:
                        if line.startswith("DEVNAME="):
                            name = "/dev/" + line[8:].strip()
            except OSError:
                pass
            self._names[majmin] = name
        return name


def _layer(field: str) -> Callable[[Sample], Values]:
    get = attrgetter(field)
    return lambda s: [((s.writable_layer.device,), get(s.writable_layer))] \
        if s.writable_layer is not None else []


# container_fs_usage_bytes is the writable layer's size; container_fs_limit_bytes the
# capacity of its filesystem (one family each: the layer is cAdvisor's fs stats here).
LAYER_ROWS = (
    ("container_fs_limit_bytes", GAUGE,
     "Number of bytes that can be consumed by the container on this filesystem.",
     ("device",), _layer("limit")),
    ("container_fs_usage_bytes", GAUGE,
     "Number of bytes that are consumed by the container on this filesystem.",
     ("device",), _layer("usage")),
)


def _dev(field: str, devices: Devices, scale: float = 1.0,
         needs: str = "") -> Callable[[Sample], Values]:
    get = attrgetter(field)
    if needs:
        return only_when("io:" + needs, lambda s: [
            ((devices(d),), get(io) * scale) for d, io in s.blkio.items() if needs in io.has]
            if s.blkio else [])
    if scale != 1.0:
        return lambda s: [((devices(d),), get(io) * scale) for d, io in s.blkio.items()] \
            if s.blkio else []
    return lambda s: [((devices(d),), get(io)) for d, io in s.blkio.items()] if s.blkio else []


def _none(s: Sample) -> Values:
    return []


only_when("never", _none)  # cAdvisor's diskstats-only families: no series for containers


def _by_op(devices: Devices) -> Callable[[Sample], Values]:
    def get(s: Sample) -> Values:
        out: Values = []
        for d, io in s.blkio.items():
            name = devices(d)
            major, _, minor = d.partition(":")
            out += [((name, major, minor, op), float(v)) for op, v in io.by_op.items()]
        return out

    return get


def families(devices: Devices) -> dict[str, list[Family]]:
    return {
        "disk": fams(
            ("container_fs_inodes_free", GAUGE, "Number of available Inodes", ("device",),
             _layer("inodes_free")),
            ("container_fs_inodes_total", GAUGE, "Number of Inodes", ("device",),
             _layer("inodes_total")),
            *LAYER_ROWS,
        ),
        "diskIO": fams(
            ("container_fs_reads_bytes_total", COUNTER, "Cumulative count of bytes read",
             ("device",), _dev("read_bytes", devices)),
            ("container_fs_reads_total", COUNTER, "Cumulative count of reads completed",
             ("device",), _dev("read_ops", devices)),
            ("container_fs_sector_reads_total", COUNTER,
             "Cumulative count of sector reads completed", ("device",), _none),
            ("container_fs_reads_merged_total", COUNTER, "Cumulative count of reads merged",
             ("device",), _dev("read_merged", devices, needs="merged")),
            ("container_fs_read_seconds_total", COUNTER,
             "Cumulative count of seconds spent reading", ("device",),
             _dev("read_time_ns", devices, NS, "time")),
            ("container_fs_writes_bytes_total", COUNTER, "Cumulative count of bytes written",
             ("device",), _dev("write_bytes", devices)),
            ("container_fs_writes_total", COUNTER, "Cumulative count of writes completed",
             ("device",), _dev("write_ops", devices)),
            ("container_fs_sector_writes_total", COUNTER,
             "Cumulative count of sector writes completed", ("device",), _none),
            ("container_fs_writes_merged_total", COUNTER, "Cumulative count of writes merged",
             ("device",), _dev("write_merged", devices, needs="merged")),
            ("container_fs_write_seconds_total", COUNTER,
             "Cumulative count of seconds spent writing", ("device",),
             _dev("write_time_ns", devices, NS, "time")),
            ("container_fs_io_current", GAUGE, "Number of I/Os currently in progress",
             ("device",), _dev("queued", devices, needs="queued")),
            ("container_fs_io_time_seconds_total", COUNTER,
             "Cumulative count of seconds spent doing I/Os", ("device",),
             _dev("time_ns", devices, NS, "time")),
            ("container_fs_io_time_weighted_seconds_total", COUNTER,
             "Cumulative weighted I/O time in seconds", ("device",), _none),
            ("container_fs_io_cost_usage_seconds_total", COUNTER,
             "Cumulative IOCost usage in seconds", ("device",),
             _dev("cost_usage_us", devices, US, "cost")),
            ("container_fs_io_cost_wait_seconds_total", COUNTER,
             "Cumulative IOCost wait in seconds", ("device",),
             _dev("cost_wait_us", devices, US, "cost")),
            ("container_fs_io_cost_indebt_seconds_total", COUNTER,
             "Cumulative IOCost debt in seconds", ("device",),
             _dev("cost_indebt_us", devices, US, "cost")),
            ("container_fs_io_cost_indelay_seconds_total", COUNTER,
             "Cumulative IOCost delay in seconds", ("device",),
             _dev("cost_indelay_us", devices, US, "cost")),
            ("container_blkio_device_usage_total", COUNTER, "Blkio Device bytes usage",
             ("device", "major", "minor", "operation"), _by_op(devices)),
        ),
    }
