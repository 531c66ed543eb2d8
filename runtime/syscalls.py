"""The Linux syscalls Python 3.11 lacks, through ctypes, in this one module.

Every wrapper raises ``OSError`` with the errno and the argument that failed, so callers
translate at their edge like any other OS error.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

PR_SET_DUMPABLE = 4
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = 155  # x86_64
_SYS_CAPSET = 126
_SYS_CAPGET = 125
if os.uname().machine == "aarch64":
    _SYS_PIVOT_ROOT, _SYS_CAPSET, _SYS_CAPGET = 41, 91, 90

_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns({nstype:#x})")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {source} on {target} ({fstype})")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), f"pivot_root {new_root}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname {name!r}")


def inet_dgram_socket() -> int:
    """An AF_INET datagram socket's fd (close-on-exec), for an interface ioctl. Not the
    ``socket`` module: its import (enums, ``_socket``, ``array``) cost 3-5 ms in the
    container's first process, on the path of every start."""
    return _check(_libc.socket(2, 2 | 0o2000000, 0), "socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC)")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(hdr), ctypes.byref(data)), "capset")


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def capbset_read(cap: int) -> bool:
    """Whether ``cap`` is in this thread's bounding set (a host may lack some)."""
    return prctl(PR_CAPBSET_READ, cap) == 1


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def clear_ambient_caps() -> None:
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass  # kernels without ambient capabilities have nothing to clear


_SYS_RT_SIGACTION = 13 if os.uname().machine != "aarch64" else 134


class _KernelSigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_void_p), ("mask", ctypes.c_uint64)]


def default_signal(sig: int) -> None:
    """SIG_DFL for ``sig`` through the raw syscall: libc (and so Python) refuses the
    signals it reserves (32, 33), yet an ignored one survives exec into the container."""
    act = _KernelSigaction(None, 0, None, 0)
    _check(_libc.syscall(_SYS_RT_SIGACTION, sig, ctypes.byref(act), None, 8),
           f"rt_sigaction({sig})")


_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
TIOCSCTTY = 0x540E


def set_controlling_tty(fd: int) -> None:
    _check(_libc.ioctl(fd, TIOCSCTTY, 0), "ioctl(TIOCSCTTY)")


_SYS_KEYCTL = 219 if os.uname().machine == "aarch64" else 250
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring() -> int:
    """A new anonymous session keyring for this process (and what it execs); its serial.
    Keys in the keyring we inherited (the admin's) are out of reach after it."""
    return _check(_libc.syscall(_SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None),
                  "keyctl(JOIN_SESSION_KEYRING)")


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_filter(program: bytes) -> None:
    """Install a classic-BPF seccomp program (``struct sock_filter`` array, 8 bytes each).
    Without no_new_privs the caller needs CAP_SYS_ADMIN, so it comes before the drop."""
    prog = _SockFprog(len(program) // 8, program)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0),
           "prctl(PR_SET_SECCOMP)")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


_SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """``openat2(2)``: with RESOLVE_IN_ROOT, ``path`` and every symlink met on the way
    resolve as if ``dirfd`` were ``/`` (a container's absolute symlink stays inside)."""
    how = _OpenHow(flags, mode, resolve)
    return _check(_libc.syscall(_SYS_OPENAT2, dirfd, _b(path), ctypes.byref(how),
                                ctypes.sizeof(how)), f"openat2 {path}")


_SYS_CLOSE_RANGE = 436  # the same number on x86_64 and aarch64 (Linux 5.9)
_FD_MAX = 0xFFFFFFFF  # ~0U: every fd the process could hold, whatever RLIMIT_NOFILE says


def _close_range(first: int, last: int) -> None:
    if first > last:
        return
    if _libc.syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last),
                     ctypes.c_uint(0)) == 0:
        return
    err = ctypes.get_errno()
    if err not in (38, 22):  # ENOSYS (kernel < 5.9), EINVAL (seccomp'd or old)
        raise OSError(err, f"close_range({first}, {last}): {os.strerror(err)}")
    try:  # the fds actually open, however high (a fixed bound misses those above it)
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(first, min(last + 1, os.sysconf("SC_OPEN_MAX"))))
    for fd in fds:
        if first <= fd <= last:
            try:
                os.close(fd)
            except OSError:
                pass


def close_fds_except(keep: tuple[int, ...] | list[int] | set[int] = ()) -> None:
    """Before exec into the container: close every fd from 3 up but ``keep``, with
    ``close_range(2)`` up to ~0 as runc does. Python's closerange stops where told (box
    used 65536), and an fd the caller opened above that without O_CLOEXEC reached the
    container."""
    first = 3
    for fd in sorted({k for k in keep if k >= 3}):
        _close_range(first, fd - 1)
        first = fd + 1
    _close_range(first, _FD_MAX)


IN_MODIFY = 0x2
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


def inotify_watch(path: str, mask: int = IN_MODIFY) -> int:
    """A non-blocking, close-on-exec inotify fd watching ``path`` for ``mask``; readable
    once an event came (cgroup v2 notifies a change of ``memory.events`` this way)."""
    fd = _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
    if _libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, f"inotify_add_watch {path}: {os.strerror(err)}")
    return fd
