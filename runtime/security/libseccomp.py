"""libseccomp (Debian's libseccomp2) through ctypes: a filter is built rule by rule and
exported as a classic-BPF program, which the sandbox installs itself (``seccomp(2)``).
The one place seccomp's C API is touched."""

from __future__ import annotations

import ctypes
import os

ACT_ALLOW = 0x7FFF0000
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_LOG = 0x7FFC0000
_ACT_ERRNO = 0x00050000
_EEXIST = 17
_FLTATR_CTL_OPTIMIZE = 8  # libseccomp >= 2.5: 2 = syscalls in a binary tree

OPS = {"ne": 1, "lt": 2, "le": 3, "eq": 4, "ge": 5, "gt": 6, "masked_eq": 7}

_lib: ctypes.CDLL | None = None


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def act_errno(errno: int) -> int:
    return _ACT_ERRNO | (errno & 0xFFFF)


def library() -> ctypes.CDLL:
    """libseccomp.so.2, once; OSError naming it if it is not installed."""
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)  # not find_library: ldconfig
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        _lib = lib
    return _lib


class Filter:
    """One libseccomp filter context: the native architecture, plus the ones added."""

    def __init__(self, default_action: int) -> None:
        self.lib = library()
        self.ctx = self.lib.seccomp_init(default_action)
        if not self.ctx:
            raise OSError(0, f"seccomp_init({default_action:#x}) failed")
        # A binary tree of syscalls instead of a list: with three ABIs the list costs the
        # kernel ~0.5 ms more at every attach (its per-syscall cache is precomputed by
        # running the filter) and every syscall walks it. Older libseccomp: a list.
        self.lib.seccomp_attr_set(self.ctx, _FLTATR_CTL_OPTIMIZE, 2)

    @staticmethod
    def _check(ret: int, what: str) -> None:
        if ret < 0:
            raise OSError(-ret, f"{what}: {os.strerror(-ret)}")

    def add_arch(self, name: str) -> None:
        """Filter the syscalls of another ABI the kernel runs for this one (libseccomp's
        name: "x86", "x32", "arm") with the same rules, added before the rules."""
        token = self.lib.seccomp_arch_resolve_name(name.encode())
        if not token:
            raise OSError(0, f"libseccomp does not know the architecture {name!r}")
        ret = self.lib.seccomp_arch_add(self.ctx, token)
        if ret < 0 and -ret != _EEXIST:
            self._check(ret, f"seccomp_arch_add({name})")

    def syscall_number(self, name: str) -> int:
        """The native number, or -1 for a name this arch (or libseccomp) does not know."""
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        return nr if nr >= 0 else -1

    def add(self, action: int, nr: int, args: list[tuple[int, int, int, int]]) -> None:
        """One rule: ``action`` for syscall ``nr`` when every (index, op, a, b) matches."""
        array = (_ArgCmp * max(1, len(args)))(*[_ArgCmp(*a) for a in args])
        ret = self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(args), array)
        if ret < 0 and -ret != _EEXIST:
            self._check(ret, f"seccomp_rule_add({nr})")

    def export(self) -> bytes:
        """The compiled classic-BPF program (``struct sock_filter`` array)."""
        r, w = os.pipe()
        try:
            self._check(self.lib.seccomp_export_bpf(self.ctx, w), "seccomp_export_bpf")
            os.close(w)
            w = -1
            chunks = []
            while chunk := os.read(r, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def release(self) -> None:
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None
