"""cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program, assembled here from
the allow rules and loaded and attached through ``bpf(2)`` (ctypes), as runc does.

v2 has no ``devices.allow`` file: the kernel asks the programs attached to the group,
for each mknod/open of a device node, with ``struct bpf_cgroup_dev_ctx`` {access_type
(access << 16 | type), major, minor}; a return of 1 allows. The program is the rules in
order, each a block of tests that jumps to the next block on a mismatch and returns 1 on
a match; after the last block it returns 0 (deny). Attached with BPF_F_ALLOW_MULTI so
a parent's programs (systemd's) still run; it lives as long as the group, so the fd is
closed after attaching.
"""

from __future__ import annotations

import ctypes
import os
import struct

# A rule is any (kind, major, minor, access) tuple, runtime.security.devices.DeviceRule
# among them (not imported: that module imports this one).
Rule = tuple[str, int, int, str]

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_BPF = 280 if os.uname().machine == "aarch64" else 321

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

# opcodes (class | size/op | source)
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_AND_K = 0x57  # dst &= imm (64-bit)
_RSH_K = 0x77  # dst >>= imm (64-bit)
_MOV_K = 0xB7  # dst = imm
_JNE_K = 0x55  # if dst != imm: pc += off
_JSET_K = 0x45  # if dst & imm: pc += off
_EXIT = 0x95
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: code, dst:4|src:4, s16 off, s32 imm (little endian)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def assemble(rules: list[Rule]) -> bytes:
    """The program for allow ``rules`` (wildcards as -1), default deny."""
    prog = [
        _insn(_LDX_W, _R2, _R1, 0),  # r2 = access_type
        _insn(_AND_K, _R2, imm=0xFFFF),  # r2 = device type
        _insn(_LDX_W, _R3, _R1, 0),
        _insn(_RSH_K, _R3, imm=16),  # r3 = requested access bits
        _insn(_LDX_W, _R4, _R1, 4),  # r4 = major
        _insn(_LDX_W, _R5, _R1, 8),  # r5 = minor
    ]
    for kind, major, minor, access in rules:
        tests: list[tuple[int, int, int]] = [(_JNE_K, _R2, _DEV_TYPE[kind])]
        allowed = sum(_ACCESS[c] for c in access)
        if allowed != 7:
            tests.append((_JSET_K, _R3, 7 & ~allowed))  # asks for more than allowed
        if major >= 0:
            tests.append((_JNE_K, _R4, major))
        if minor >= 0:
            tests.append((_JNE_K, _R5, minor))
        block = len(tests) + 2
        for i, (code, reg, imm) in enumerate(tests):
            prog.append(_insn(code, reg, off=block - i - 1, imm=imm))
        prog += [_insn(_MOV_K, _R0, imm=1), _insn(_EXIT)]
    prog += [_insn(_MOV_K, _R0, imm=0), _insn(_EXIT)]
    return b"".join(prog)


def _bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    ret = _libc.syscall(_SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def load(program: bytes) -> int:
    """BPF_PROG_LOAD of a device program; its fd (the verifier's log in the error)."""
    insns = ctypes.create_string_buffer(program, len(program))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(72)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                     ctypes.addressof(insns), ctypes.addressof(license_), 1, len(log),
                     ctypes.addressof(log))
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD) of the device program")
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise OSError(e.errno, f"{e.strerror} {' | '.join(detail)}".strip()) from None


def attach(cgroup_dir: str, prog_fd: int) -> None:
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = ctypes.create_string_buffer(20)
        struct.pack_into("<IIIII", attr, 0, fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0)
        _bpf(BPF_PROG_ATTACH, attr, f"bpf(BPF_PROG_ATTACH) to {cgroup_dir}")
    finally:
        os.close(fd)


def attach_device_filter(cgroup_dir: str, rules: list[Rule]) -> None:
    """Load the program of ``rules`` and attach it to ``cgroup_dir`` (a v2 group)."""
    prog_fd = load(assemble(rules))
    try:
        attach(cgroup_dir, prog_fd)
    finally:
        os.close(prog_fd)
