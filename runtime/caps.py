"""Linux capabilities by name, Docker's default set, and ``--cap-add/--cap-drop``."""

from __future__ import annotations

from runtime.errors import InvalidArgument

CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
    "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
    "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
    "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
    "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

# moby's oci/caps/defaults.go
DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
           "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
           "AUDIT_WRITE")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPS.values())


def _normalise(name: str, flag: str) -> str:
    n = name.strip().upper()
    if n.startswith("CAP_"):
        n = n[4:]
    if n != "ALL" and n not in CAPS:
        raise InvalidArgument(f'invalid argument "{name}" for "{flag}" flag: unknown capability: '
                              f'"CAP_{n}"')
    return n


def effective_set(add: list[str], drop: list[str], privileged: bool) -> list[str]:
    """Docker's rules: start from the default set (all when privileged), drop, then add."""
    add_n = [_normalise(c, "--cap-add") for c in add]
    drop_n = [_normalise(c, "--cap-drop") for c in drop]
    top = last_cap()
    every = [n for n, v in CAPS.items() if v <= top]
    if privileged:
        return every
    caps = list(DEFAULT)
    if "ALL" in drop_n:
        caps = []
    else:
        caps = [c for c in caps if c not in drop_n]
    if "ALL" in add_n:
        return every
    for c in add_n:
        if c not in caps:
            caps.append(c)
    return caps


def mask(names: list[str]) -> int:
    m = 0
    for n in names:
        m |= 1 << CAPS[n]
    return m
