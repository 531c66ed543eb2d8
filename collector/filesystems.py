"""Which filesystem holds a directory, named as cAdvisor names it, and how big it is.

cAdvisor's ``device`` label on ``container_fs_*`` is the mount source of the filesystem
("/dev/sda1"), found by the directory's device number in ``/proc/self/mountinfo``; its
``container_fs_limit_bytes`` is that filesystem's capacity (``statvfs``: blocks times
fragment size). mountinfo lines are ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
[OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS``, with space, tab, newline and backslash in
paths written as octal escapes (``\\040``).
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

_OCTAL = re.compile(r"\\([0-7]{3})")


class Mount(NamedTuple):
    majmin: str  # "254:0"
    mountpoint: str
    fstype: str
    source: str
    options: str = ""  # the superblock's options ("rw,lowerdir=...,upperdir=...")


def unescape(field: str) -> str:
    """A mountinfo path field with its ``\\ooo`` escapes decoded."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field) if "\\" in field else field


def parse_mountinfo(text: str) -> list[Mount]:
    """Every well-formed line of a mountinfo file; a malformed line is skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3 or ":" not in fields[2]:
            continue
        mounts.append(Mount(fields[2], unescape(fields[4]), fields[sep + 1],
                            unescape(fields[sep + 2]), " ".join(fields[sep + 3:])))
    return mounts


def overlay_upper(mounts: list[Mount]) -> str:
    """The upperdir of the overlay mounted at "/" in a process's mountinfo (the writable
    layer of any overlay-based runtime: containerd's and CRI-O's snapshots included), as
    the host sees the path; "" when its root is not an overlay."""
    for m in reversed(mounts):  # the last mount on "/" is the one the process sees
        if m.mountpoint != "/":
            continue
        if m.fstype != "overlay":
            return ""
        for option in m.options.split(","):  # overlayfs escapes "," in paths (\054)
            key, _, value = option.partition("=")
            if key == "upperdir":
                return unescape(value)
        return ""
    return ""


def process_upper_dir(proc_root: str, pid: int) -> str:
    """``overlay_upper`` of ``pid``'s mountinfo; "" when the process is gone."""
    try:
        with open(f"{proc_root}/{pid}/mountinfo") as f:
            return overlay_upper(parse_mountinfo(f.read()))
    except (OSError, UnicodeDecodeError):
        return ""


class Filesystems:
    """``device_of(path)`` -> (device name, capacity in bytes); mountinfo is read again
    only when a directory's device number is not in the last reading (a new mount)."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.mountinfo = f"{proc_root}/self/mountinfo"
        self._names: dict[str, str] = {}

    def _reload(self) -> None:
        try:
            with open(self.mountinfo) as f:
                mounts = parse_mountinfo(f.read())
        except OSError:
            return
        names: dict[str, str] = {}
        for m in mounts:  # the first mount of a device names it (later ones are binds)
            names.setdefault(m.majmin, m.source)
        self._names = names

    def device_of(self, path: str) -> tuple[str, int]:
        """The filesystem holding ``path``: (its source, or "maj:min" when mountinfo does
        not list it; its capacity). OSError when ``path`` is gone."""
        st = os.stat(path)
        majmin = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        name = self._names.get(majmin)
        if name is None:
            self._reload()
            name = self._names.setdefault(majmin, majmin)  # not listed: its number
        vfs = os.statvfs(path)
        return name, vfs.f_blocks * vfs.f_frsize
