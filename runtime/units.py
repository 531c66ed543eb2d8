"""Parsers for the values of docker's resource flags, with docker's wording.

Each raises ``InvalidArgument`` whose one line reads like the docker CLI's (pflag's)
``invalid argument "12x" for "-m, --memory" flag: invalid size: '12x'``. Range checks that
depend on the host (CPU count, online cpus) belong to the cgroup driver's ``validate``.
"""

from __future__ import annotations

import os
import stat

from formats.units import INT64_MAX, ram_in_bytes
from runtime.cgroups.base import DeviceRate
from runtime.cgroups.limits import cpuset_ranges, format_cpuset
from runtime.errors import InvalidArgument


def _invalid(text: str, flag: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: {reason}')


def parse_size(text: str, flag: str) -> int:
    """``"32m"`` -> 33554432; a plain number is bytes."""
    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise _invalid(text, flag, str(exc)) from None


def parse_memory_swap(text: str, flag: str = "--memory-swap") -> int:
    """Like ``parse_size`` but ``-1`` means unlimited swap (docker's MemSwapBytes)."""
    return -1 if text == "-1" else parse_size(text, flag)


def parse_cpus(text: str, flag: str = "--cpus") -> int:
    """``"0.5"`` -> 500000000 nano CPUs (docker's NanoCPUs: a rational, at most 1e-9 precise)."""
    try:
        from fractions import Fraction

        cpus = Fraction(text.strip()) if text.strip() == text else None
    except (ValueError, ZeroDivisionError):
        cpus = None
    if cpus is None:
        raise _invalid(text, flag, f"failed to parse {text} as a rational number")
    if cpus < 0:
        n = len(os.sched_getaffinity(0))
        raise _invalid(
            text,
            flag,
            f"range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
        )
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise _invalid(text, flag, "value is too precise")
    return int(nano)


def parse_cpuset(text: str, flag: str) -> str:
    """``"3,0-1"`` -> ``"0-1,3"``: syntax only; which cpus exist is the driver's check."""
    try:
        return format_cpuset(cpuset_ranges(text))
    except ValueError as err:
        raise _invalid(text, flag, str(err)) from None


def parse_device_rate(text: str, flag: str, per_second_unit: str = "bps") -> DeviceRate:
    """``/dev/vda:1mb`` (bps, a size) or ``/dev/vda:100`` (iops, an integer) for a block device."""
    path, sep, value = text.partition(":")
    if not sep or not path:
        raise _invalid(text, flag, f"bad format: {text}")
    if not path.startswith("/dev/"):
        raise _invalid(text, flag, f"bad format for device path: {text}")
    if per_second_unit == "bps":
        try:
            rate: int | None = ram_in_bytes(value)
        except ValueError:
            rate = None
        hint = ("<device-path>:<number>[<unit>]. Number must be a positive integer. "
                "Unit is optional and can be kb, mb, or gb")
    elif per_second_unit == "iops":
        rate = (
            int(value) if value.isascii() and value.isdigit() and int(value) <= INT64_MAX else None
        )
        hint = "<device-path>:<number>. Number must be a positive integer"
    else:
        raise ValueError(f"per_second_unit must be 'bps' or 'iops', not {per_second_unit!r}")
    if rate is None:
        raise _invalid(text, flag, f"invalid rate for device: {text}. The correct format is {hint}")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise _invalid(text, flag, f"cannot stat device {path}: {err.strerror}") from None
    if not stat.S_ISBLK(mode):
        raise _invalid(text, flag, f"{path} is not a block device")
    return DeviceRate(path, rate)
