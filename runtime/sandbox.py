"""Inside the new namespaces, before exec: the container's root filesystem, identity and
privileges. Runs as PID 1 of the container in a forked child; never returns.

Everything this module needs is imported before ``pivot_root``: after it the host's
Python library is out of reach.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from collections import namedtuple

from runtime import syscalls as sc
from runtime.caps import last_cap, mask
from runtime.security import inroot

# Docker's masked and read-only paths (moby oci/defaults.go).
MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))


_SPEC_FIELDS = {
    "lower_dirs": None, "upper_dir": None, "work_dir": None, "merged_dir": None,
    "args": None, "env": None, "hostname": None,
    "user": "", "cwd": "/", "caps": (), "privileged": False, "read_only": False,
    "tty": False, "init": False, "new_uts": True,
    "etc_files": {},  # container path -> host file, bind-mounted (hostname, hosts, resolv.conf)
    "shm_size": 64 * 1024 * 1024,
    # (type, source, target, rw, data, copy_up, flags), parents first: runtime.volumes
    "mounts": (),
    # --device nodes: (path, "c"|"b", major, minor, mode, uid, gid): runtime.security.devices
    "devices": (),
    # compiled seccomp program (None: unconfined) and --security-opt no-new-privileges
    "seccomp": None,
    "no_new_privs": False,
}


class SandboxSpec(namedtuple("SandboxSpec", list(_SPEC_FIELDS),
                             defaults=list(_SPEC_FIELDS.values())[7:])):
    """What the container's PID 1 sets up; built by the monitor from the state file.
    A namedtuple, not a dataclass: `dataclasses` costs ~7 ms of import on `box run`."""

    __slots__ = ()


class ExecFailure(Exception):
    """Reported to the monitor through the error pipe: code, then message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _mkdir_p(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _make_device(dest: str, kind: str, major: int, minor: int, mode: int, uid: int,
                 gid: int) -> None:
    """A ``--device`` node as the host has it (type, numbers, mode, owner)."""
    _mkdir_p(os.path.dirname(dest))
    if os.path.lexists(dest):
        os.unlink(dest)
    os.mknod(dest, mode | (stat.S_IFBLK if kind == "b" else stat.S_IFCHR),
             os.makedev(major, minor))
    os.chown(dest, uid, gid)


def _mount_rootfs(spec: SandboxSpec) -> None:
    # Nothing we mount may propagate back to the host.
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lower = ":".join(spec.lower_dirs)
    data = f"lowerdir={lower},upperdir={spec.upper_dir},workdir={spec.work_dir}"
    root = spec.merged_dir
    sc.mount("overlay", root, "overlay", 0, data)
    inroot.plain_directory(root, "/proc")
    sc.mount("proc", root + "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    inroot.plain_directory(root, "/dev")
    sc.mount("tmpfs", root + "/dev", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME,
             "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        os.mknod(f"{root}/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    for path, kind, major, minor, mode, uid, gid in spec.devices:
        _make_device(root + path, kind, major, minor, mode, uid, gid)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")):
        os.symlink(target, f"{root}/dev/{name}")
    os.mkdir(root + "/dev/pts", 0o755)
    sc.mount("devpts", root + "/dev/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(root + "/dev/shm", 0o1777)
    sc.mount("shm", root + "/dev/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
             f"mode=1777,size={spec.shm_size}")
    os.mkdir(root + "/dev/mqueue", 0o755)
    sc.mount("mqueue", root + "/dev/mqueue", "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    inroot.plain_directory(root, "/sys")
    sys_flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    if not spec.privileged:
        sys_flags |= sc.MS_RDONLY
    try:
        sc.mount("sysfs", root + "/sys", "sysfs", sys_flags)
    except OSError as e:
        if e.errno != errno.EPERM:  # host network: sysfs of the host netns; bind it instead
            raise
        sc.mount("/sys", root + "/sys", None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, root + "/sys", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sys_flags)
    if spec.mounts:  # before the etc files: a volume on /etc must not hide /etc/hosts
        from runtime.mounts import apply_mounts  # before pivot_root: the module is on the host

        apply_mounts(root, spec.mounts)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for target, source in spec.etc_files.items():
            fd = inroot.ensure_in_root(root_fd, target, directory=False)
            try:
                sc.mount(source, inroot.fd_path(fd), None, sc.MS_BIND)
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    if not spec.privileged:
        for path in MASKED:
            dest = root + path
            if not os.path.exists(dest):
                continue
            if os.path.isdir(dest):
                sc.mount("tmpfs", dest, "tmpfs", sc.MS_RDONLY)
            else:
                sc.mount(root + "/dev/null", dest, None, sc.MS_BIND)
        for path in READONLY:
            dest = root + path
            if os.path.exists(dest):
                sc.mount(dest, dest, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(None, dest, None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC)
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if spec.read_only:
        sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY)


def _lookup_user(user: str) -> tuple[int, int, list[int], str]:
    """``name|uid[:group|gid]`` against the container's /etc/passwd and /etc/group."""
    name, _, group = user.partition(":")
    uid, gid, home, uname = 0, 0, "/", "root"
    passwd = _read_db("/etc/passwd")
    if name.isdigit():
        uid = int(name)
        for row in passwd:
            if row[2] == name:
                gid, home, uname = int(row[3]), row[5], row[0]
                break
        else:
            gid, uname = uid, ""
    else:
        for row in passwd:
            if row[0] == name:
                uid, gid, home, uname = int(row[2]), int(row[3]), row[5], name
                break
        else:
            raise ExecFailure(
                125, f"unable to find user {name}: no matching entries in passwd file"
            )
    groups_db = _read_db("/etc/group")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            for row in groups_db:
                if row[0] == group:
                    gid = int(row[2])
                    break
            else:
                raise ExecFailure(125, f"unable to find group {group}: no matching entries in "
                                       "group file")
    extra = [int(r[2]) for r in groups_db if uname and uname in r[3].split(",") and r[2].isdigit()]
    return uid, gid, sorted({gid, *extra}), home


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [ln.rstrip("\n").split(":") for ln in f
                    if ln.strip() and not ln.startswith("#") and ln.count(":") >= 3]
    except OSError:
        return []


def drop_privileges(caps: list[str], privileged: bool, uid: int, gid: int,
                     groups: list[int]) -> None:
    keep = mask(caps)
    top = last_cap()
    for cap in range(top + 1):
        if not keep & (1 << cap):
            sc.capbset_drop(cap)
        elif not sc.capbset_read(cap):
            keep &= ~(1 << cap)  # the host itself lacks it (--privileged in a container)
    sc.clear_ambient_caps()
    os.setgroups(groups)
    os.setgid(gid)
    if uid != 0:
        # setuid() to non-root clears permitted and effective caps, as Docker does for
        # non-root users, but not the inheritable ones (whatever ran `box run` had):
        # cleared first, CAP_SETUID kept for the setuid itself.
        setuid_cap = 1 << 7
        sc.capset(keep | setuid_cap, keep | setuid_cap, 0)
        os.setuid(uid)
        return
    sc.capset(keep, keep, keep if privileged else 0)


def _find_executable(arg0: str, env: list[str]) -> str:
    """Go's exec.LookPath inside the container, with Docker's messages."""
    if "/" in arg0:
        candidates = [arg0]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")),
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        candidates = [os.path.join(d or ".", arg0) for d in path.split(":")]
    denied = None
    for cand in candidates:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if "/" in arg0:
                raise ExecFailure(126, f'exec: "{arg0}": is a directory')
            continue
        if st.st_mode & 0o111 == 0:
            denied = cand
            continue
        return cand
    if denied:
        raise ExecFailure(126, f'exec: "{arg0}": permission denied')
    if "/" in arg0:
        raise ExecFailure(127, f'exec: "{arg0}": stat {arg0}: no such file or directory')
    raise ExecFailure(127, f'exec: "{arg0}": executable file not found in $PATH')


def _default_signals() -> None:
    """The command starts with default dispositions and no blocked signals: the monitor
    ignores SIGTERM & co. and Python ignores SIGPIPE, and ignored signals survive exec
    (a shell could not even ``trap`` them)."""
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # reserved by libc: only the raw syscall may
            with contextlib.suppress(OSError):
                sc.default_signal(sig)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _hide_host_environment() -> None:
    """``--init``'s PID 1 is the forked host Python: its exec-time environment (whoever
    ran ``box run``) is zeroed in memory and the process made non-dumpable, so neither
    ``/proc/1/environ`` nor ptrace shows the container anything of the host."""
    import ctypes

    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    # fields[0] is field 3 (state): env_start and env_end are fields 50 and 51.
    env_start, env_end = int(fields[47]), int(fields[48])
    if 0 < env_start < env_end:
        ctypes.memset(env_start, 0, env_end - env_start)
    os.environ.clear()


def _run_init(child: int) -> None:
    """``--init``: forward signals to the command and reap every zombie, like tini."""
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status)
                     else 128 + os.WTERMSIG(status))


def enter(spec: SandboxSpec, errpipe: int, console: int = -1) -> None:
    """Set up and exec; on any failure write ``code\nmessage`` to ``errpipe`` and exit.

    With a tty, ``console`` is a unix socket: the pty is opened from the container's own
    devpts (so ``tty`` names /dev/pts/0 inside) and its master is sent back over it, as
    runc's console socket does.
    """
    try:
        if spec.tty:
            import socket  # before pivot_root: the module lives on the host
        if spec.new_uts:
            sc.sethostname(spec.hostname)
        sc.join_session_keyring()  # not the host's: each container its own, as runc does
        _mount_rootfs(spec)
        if spec.tty:
            master, slave = os.openpty()  # /dev/ptmx is the container's now
            socket.send_fds(socket.socket(fileno=console), [b"pty"], [master])
            os.close(master)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.close(slave)
    except OSError as e:
        _report(errpipe, 125, f"container init: {e}")
    except BaseException as e:
        _report(errpipe, 125, f"container init: {e!r}")
    become(spec.args, spec.env, spec.user, spec.cwd, spec.caps, spec.privileged, spec.tty,
           spec.init, errpipe, spec.seccomp, spec.no_new_privs)


def become(args: list[str], env: list[str], user: str, cwd: str, caps: list[str],
           privileged: bool, tty: bool, init: bool, errpipe: int,
           seccomp: bytes | None = None, no_new_privs: bool = False) -> None:
    """Inside the container's root: take on the user, the privileges and the command.
    Shared by the container's PID 1 and ``box exec``. Never returns.

    The seccomp program goes in as runc puts it: without no_new_privs installing it
    needs CAP_SYS_ADMIN, so just before the capability drop (the profile allows what
    the drop and exec call); with no_new_privs, after the drop."""
    try:
        env = list(env)
        uid, gid, groups, home = _lookup_user(user) if user else (0, 0, [0], "/root")
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={home}")
        if cwd and cwd != "/":
            if os.path.exists(cwd) and not os.path.isdir(cwd):
                raise ExecFailure(125, f'chdir to cwd ("{cwd}") set in config failed: '
                                       "not a directory")
            os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd or "/")
        # Always a session of its own: in the caller's session a terminal fd it was
        # handed is its controlling tty, and TIOCSTI types into the admin's shell.
        os.setsid()
        if tty:
            sc.set_controlling_tty(0)
        if seccomp is not None and not no_new_privs:
            sc.seccomp_filter(seccomp)
        drop_privileges(caps, privileged, uid, gid, groups)
        if no_new_privs:
            sc.set_no_new_privs()
            if seccomp is not None:
                sc.seccomp_filter(seccomp)
        target = _find_executable(args[0], env)
        _default_signals()
        if init:
            # Before the fork: the command may read /proc/1/environ the moment it runs.
            _hide_host_environment()
            child = os.fork()
            if child:
                os.close(errpipe)
                _run_init(child)
        try:
            os.execve(target, args, dict(e.split("=", 1) for e in env if "=" in e))
        except OSError as e:
            code = 127 if e.errno == errno.ENOENT else 126
            raise ExecFailure(code, f'exec: "{args[0]}": {e.strerror.lower()}') from None
    except ExecFailure as e:
        _report(errpipe, e.code, str(e))
    except OSError as e:
        _report(errpipe, 125, f"container init: {e}")
    except BaseException as e:
        _report(errpipe, 125, f"container init: {e!r}")


def _report(errpipe: int, code: int, message: str) -> None:
    try:
        os.write(errpipe, f"{code}\n{message}".encode())
    finally:
        os._exit(code)
