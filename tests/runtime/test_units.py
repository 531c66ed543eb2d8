"""Flag-value parsers: docker's accepted forms, its wording for refused ones."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.cgroups.base import DeviceRate
from runtime.cgroups.limits import cpuset_ranges
from runtime.errors import InvalidArgument
from runtime.units import (
    parse_cpus,
    parse_cpuset,
    parse_device_rate,
    parse_memory_swap,
    parse_size,
)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def block_device() -> str:
    """A real block device node on this host (the first in /dev)."""
    for name in sorted(os.listdir("/dev")):
        path = os.path.join("/dev", name)
        if stat.S_ISBLK(os.lstat(path).st_mode):
            return path
    pytest.skip("no block device in /dev")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("32m", 32 * MiB),
        ("1g", GiB),
        ("1G", GiB),
        ("512k", 512 * KiB),
        ("100b", 100),
        ("100", 100),
        ("1.5g", GiB + GiB // 2),
        ("1.5", 1),  # Go's int64() truncates
        ("1KiB", KiB),
        ("1mb", MiB),
        ("1 MB", MiB),
        ("2t", 2 << 40),
        ("1p", 1 << 50),
        ("0", 0),
        ("1 ", 1),  # go-units' regex allows the space even with no unit
    ],
)
def test_parse_size_accepts_docker_forms(text: str, size: int) -> None:
    assert parse_size(text, "-m, --memory") == size


@pytest.mark.parametrize(
    "text", ["12x", "", "-1", "1.2.3", "1kk", "m", "1e3", "1\n", " 1", "1mbb", "١"]
)
def test_parse_size_refuses_with_docker_message(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_size(text, "-m, --memory")
    assert (
        str(err.value)
        == f'invalid argument "{text}" for "-m, --memory" flag: invalid size: \'{text}\''
    )
    assert err.value.exit_code == 125


def test_parse_size_refuses_beyond_int64() -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size("9000000p", "--memory-reservation")


@given(
    st.integers(min_value=0, max_value=1 << 20),
    st.sampled_from(["", "b", "k", "m", "g", "t", "p"]),
    st.sampled_from(["", "b", "ib"]),
    st.booleans(),
)
def test_parse_size_round_trip(n: int, unit: str, tail: str, upper: bool) -> None:
    mult = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1 << 40, "p": 1 << 50}[unit]
    text = f"{n}{unit}{tail if unit not in ('', 'b') else ''}"
    if n * mult < 1 << 63:
        assert parse_size(text.upper() if upper else text, "-m, --memory") == n * mult
    else:
        with pytest.raises(InvalidArgument, match="invalid size"):
            parse_size(text, "-m, --memory")


def test_parse_memory_swap() -> None:
    assert parse_memory_swap("-1") == -1
    assert parse_memory_swap("1g") == GiB
    with pytest.raises(InvalidArgument, match=r'^invalid argument "-2" for "--memory-swap" flag'):
        parse_memory_swap("-2")


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("0.5", 500_000_000),
        ("2", 2_000_000_000),
        ("1.25", 1_250_000_000),
        ("0", 0),
        ("1/4", 250_000_000),
    ],
)
def test_parse_cpus(text: str, nano: int) -> None:
    assert parse_cpus(text) == nano


def test_parse_cpus_refusals() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_cpus("abc")
    assert (
        str(err.value)
        == 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'
    )
    with pytest.raises(InvalidArgument) as err:
        parse_cpus("-1")
    n = len(os.sched_getaffinity(0))
    assert str(err.value) == (
        f'invalid argument "-1" for "--cpus" flag: range of CPUs is from 0.01 to {n}.00, '
        f"as there are only {n} CPUs available"
    )
    with pytest.raises(InvalidArgument, match="value is too precise"):
        parse_cpus("0.0000000001")
    with pytest.raises(InvalidArgument, match="rational number"):
        parse_cpus(" 1")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0-1,3", "0-1,3"),
        ("3,0,1", "0-1,3"),
        ("0", "0"),
        ("", ""),
        ("2-3,0-1", "0-3"),
        ("5,5", "5"),
    ],
)
def test_parse_cpuset_normalises(text: str, canonical: str) -> None:
    assert parse_cpuset(text, "--cpuset-cpus") == canonical


@pytest.mark.parametrize("text", ["a", "1-0", "1-", "-1", ",", "0,", " 1", "0-1-2", "0x1", "²"])
def test_parse_cpuset_refuses(text: str) -> None:
    with pytest.raises(
        InvalidArgument, match=rf'^invalid argument "{text}" for "--cpuset-cpus" flag: invalid'
    ):
        parse_cpuset(text, "--cpuset-cpus")


@given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40))
def test_parse_cpuset_round_trip(cpus: list[int]) -> None:
    canonical = parse_cpuset(",".join(map(str, cpus)), "--cpuset-cpus")
    members = {c for lo, hi in cpuset_ranges(canonical) for c in range(lo, hi + 1)}
    assert members == set(cpus)
    assert parse_cpuset(canonical, "--cpuset-cpus") == canonical


def test_parse_device_rate_bps_and_iops() -> None:
    dev = block_device()
    assert parse_device_rate(f"{dev}:1mb", "--device-read-bps", "bps") == DeviceRate(dev, MiB)
    assert parse_device_rate(f"{dev}:4096", "--device-write-bps", "bps") == DeviceRate(dev, 4096)
    assert parse_device_rate(f"{dev}:100", "--device-read-iops", "iops") == DeviceRate(dev, 100)


@pytest.mark.parametrize(
    ("value", "unit", "reason"),
    [
        ("/dev/null:1mb", "bps", "/dev/null is not a block device"),
        (
            "/dev/box-no-such-disk:1mb",
            "bps",
            "cannot stat device /dev/box-no-such-disk: No such file or directory",
        ),
        ("vda:1mb", "bps", "bad format for device path: vda:1mb"),
        ("/dev/vda", "bps", "bad format: /dev/vda"),
        (":1", "iops", "bad format: :1"),
        (
            "/dev/vda:1xb",
            "bps",
            "invalid rate for device: /dev/vda:1xb. The correct format is "
            "<device-path>:<number>[<unit>]",
        ),
        (
            "/dev/vda:1mb",
            "iops",
            "invalid rate for device: /dev/vda:1mb. The correct format is <device-path>:<number>. "
            "Number",
        ),
        ("/dev/vda:-5", "iops", "invalid rate for device: /dev/vda:-5."),
    ],
)
def test_parse_device_rate_refusals(value: str, unit: str, reason: str) -> None:
    flag = f"--device-read-{unit}"
    with pytest.raises(InvalidArgument) as err:
        parse_device_rate(value, flag, unit)
    assert str(err.value).startswith(f'invalid argument "{value}" for "{flag}" flag: {reason}')
    assert "\n" not in str(err.value)
