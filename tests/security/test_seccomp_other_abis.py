"""Attack and breakage: an x86_64 kernel also runs i386 syscalls (``int 0x80``) and, when
built with it, x32 ones (the 0x40000000 bit). The seccomp program covered the native ABI
only, and libseccomp's answer to any other is SIGSYS: every 32-bit program died on its
first syscall, where Docker runs it. moby's archMap adds SCMP_ARCH_X86 and SCMP_ARCH_X32
on amd64 (ARM on arm64): the same allow list and refusals for every ABI, so a denied
call is EPERM whichever door it comes through, and an allowed one works."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import Box
from tests.security.conftest import busybox_with_probe, imported_rootfs

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 ABIs")

# A 64-bit static program making i386 and x32 syscalls; one line per call, the raw
# return value (a negative errno from the kernel or the filter).
PROBE = r"""
#include <stdio.h>
static long i386_call(long nr, long a) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a) : "memory");
    return ret;
}
static long x32_call(long nr, long a) {
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(nr | 0x40000000L), "D"(a)
                      : "rcx", "r11", "memory");
    return ret;
}
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("i386 getpid %ld\n", i386_call(20, 0));
    printf("i386 unshare %ld\n", i386_call(310, 0x10000000));  /* CLONE_NEWUSER */
    printf("x32 getpid %ld\n", x32_call(39, 0));
    printf("x32 unshare %ld\n", x32_call(272, 0x10000000));
    return 0;
}
"""
EPERM, ENOSYS = -1, -38


@pytest.fixture(scope="module")
def abi_image(box_session: Box, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("abi")
    with imported_rootfs(box_session, busybox_with_probe(tmp, "abi", PROBE), "abi") as name:
        yield name


def _calls(box: Box, image: str, *flags: str) -> dict[str, int]:
    proc = box("run", "--rm", "--network", "none", *flags, image, "/abi")
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)  # 159: SIGSYS
    return {" ".join(ln.split()[:2]): int(ln.split()[2]) for ln in proc.stdout.splitlines()}


def test_i386_and_x32_syscalls_meet_the_same_profile(box: Box, abi_image: str) -> None:
    calls = _calls(box, abi_image)
    assert calls["i386 getpid"] == 1, calls  # allowed: PID 1 of its namespace
    assert calls["i386 unshare"] == EPERM, calls  # refused as the native unshare is
    assert calls["x32 getpid"] in (1, ENOSYS), calls  # allowed (ENOSYS: kernel without x32)
    assert calls["x32 unshare"] == EPERM, calls  # refused by the filter before the kernel


def test_unconfined_reaches_the_kernel(box: Box, abi_image: str) -> None:
    """The refusals above are the filter's: without it the kernel answers."""
    calls = _calls(box, abi_image, "--security-opt", "seccomp=unconfined")
    assert calls["i386 getpid"] == 1, calls
