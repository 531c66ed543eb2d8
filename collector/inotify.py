"""The two inotify calls Python lacks (``inotify_init1``, ``inotify_add_watch``/
``rm_watch``), through libc, for the OOM watcher's cgroup v2 ``memory.events`` watches
(``collector.alerts``). ``collector.watch`` uses watchdog instead: it wants recursive
directory events, this one file-modify events on descriptors it polls itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct

IN_MODIFY = 0x2
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK
_EVENT = struct.Struct("iIII")  # struct inotify_event without its name


class Inotify:
    """The two inotify calls Python lacks, through libc."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = (ctypes.c_int, ctypes.c_int)
        fd = libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd

    def add(self, path: str) -> int:
        wd = self._add(self.fd, os.fsencode(path), IN_MODIFY)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return int(wd)

    def remove(self, wd: int) -> None:
        self._rm(self.fd, wd)  # EINVAL when the file is already gone: nothing to undo

    def read(self) -> list[int]:
        """Watch descriptors with pending events."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        wds, i = [], 0
        while i + _EVENT.size <= len(data):
            wd, _mask, _cookie, length = _EVENT.unpack_from(data, i)
            wds.append(wd)
            i += _EVENT.size + length
        return wds

    def close(self) -> None:
        os.close(self.fd)
