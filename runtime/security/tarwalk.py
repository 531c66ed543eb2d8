"""``tarfile.add`` without name service lookups, for helpers inside a container's root.

``TarFile.gettarinfo`` asks ``pwd``/``grp`` for owner names, which makes glibc load the
container's NSS modules into a root process. Here a TarInfo is built from ``lstat`` alone,
with numeric owners and no names (``box cp``'s extractors go by the numbers; ``box
export`` never wrote names). Hard links within the walk become link entries, sockets are
skipped (as tarfile does).
"""

from __future__ import annotations

import os
import stat
import tarfile


class NumericWalker:
    """Adds files to ``tf`` with numeric owners only (empty owner names)."""

    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.links: dict[tuple[int, int], str] = {}

    def info(self, path: str, arcname: str) -> tarfile.TarInfo | None:
        st = os.lstat(path)
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
            else:
                if st.st_nlink > 1:
                    self.links[key] = arcname
                info.type, info.size = tarfile.REGTYPE, st.st_size
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return None
        return info

    def add(self, path: str, arcname: str) -> None:
        """``path`` and, for a directory, everything below it (names sorted)."""
        info = self.info(path, arcname)
        if info is None:
            return
        if info.type == tarfile.REGTYPE:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                self.tf.addfile(info, f)
            return
        self.tf.addfile(info)
        if info.type == tarfile.DIRTYPE:
            for name in sorted(os.listdir(path)):
                self.add(os.path.join(path, name), os.path.join(arcname, name))
