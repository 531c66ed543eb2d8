"""Volumes and mounts: ``-v``, ``--mount``, ``--tmpfs`` into docker's ``MountPoints``, and
named volumes under ``<root>/volumes/<name>/_data`` (docker's layout) with their record
in ``<root>/volumes/<name>/volume.json``.

Parsing raises before anything exists; ``mount_points`` then creates what a container
needs (named and anonymous volumes, missing ``-v`` host directories). The mounts happen
inside the container's private mount namespace (``sandbox``), so none is seen on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable

from formats.atomicfile import write_atomic
from runtime.errors import Conflict, InvalidArgument, NotFound
from runtime.paths import private_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.paths import Paths

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_MODES = {"ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "shared", "rshared", "slave",
          "rslave", "consistent", "cached", "delegated"}


def _check_target(target: str, spec: str) -> str:
    if not target:
        raise InvalidArgument(f"invalid volume specification: '{spec}': empty destination")
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': mount path must be absolute"
        )
    clean = os.path.normpath(target)
    if clean == "/":
        raise InvalidArgument(f"invalid volume specification: '{spec}': destination can't be '/'")
    return clean


def _volume_source(source: str, spec: str) -> tuple[str, str]:
    """("bind", abs path) or ("volume", name)."""
    if source.startswith("/"):
        return "bind", os.path.normpath(source)
    if not _NAME_RE.match(source):
        raise InvalidArgument(f'invalid volume specification: \'{spec}\': "{source}" includes '
                              'invalid characters for a local volume name, only '
                              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; a host directory '
                              'needs an absolute path')
    return "volume", source


def parse_volume(spec: str) -> dict[str, Any]:
    """``-v [SRC:]DST[:MODE]``."""
    parts = spec.split(":")
    if any(not p for p in parts) or not 1 <= len(parts) <= 3:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    mode = ""
    if len(parts) == 3:
        source, target, mode = parts
    elif len(parts) == 2 and set(parts[1].split(",")) <= _MODES:
        source, target, mode = "", parts[0], parts[1]
    elif len(parts) == 2:
        source, target = parts
    else:
        source, target = "", parts[0]
    opts = mode.split(",") if mode else []
    bad = [o for o in opts if o not in _MODES]
    if bad or ("ro" in opts and "rw" in opts):
        raise InvalidArgument(f"invalid mode: {mode} (in '{spec}')")
    kind, src = _volume_source(source, spec) if source else ("volume", "")
    if kind == "bind" and "nocopy" in opts:
        raise InvalidArgument(f"invalid mode: nocopy is for volumes (in '{spec}')")
    return {"Type": kind, "Source": src, "Destination": _check_target(target, spec),
            "RW": "ro" not in opts, "CopyData": "nocopy" not in opts, "Spec": spec,
            "CreateSource": kind == "bind"}


def _bool(value: str, spec: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid value {value!r} in --mount {spec!r}: want true or false")


def parse_mount(spec: str) -> dict[str, Any]:
    """``--mount type=bind|volume|tmpfs,source=..,target=..,readonly,...`` (docker's keys)."""
    kv: dict[str, str] = {}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not key:
            raise InvalidArgument(f"invalid --mount {spec!r}: empty field")
        if key in ("readonly", "ro", "volume-nocopy") and not eq:
            value = "true"
        elif not eq:
            raise InvalidArgument(f"invalid field '{field}' in --mount {spec!r}: must be a "
                                  "key=value pair")
        kv[
            {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(
                key, key
            )
        ] = value
    known = {"type", "source", "target", "readonly", "volume-nocopy", "volume-label",
             "volume-driver", "tmpfs-size", "tmpfs-mode", "bind-propagation", "consistency"}
    unknown = sorted(set(kv) - known)
    if unknown:
        raise InvalidArgument(f"unexpected key '{unknown[0]}' in --mount {spec!r}")
    kind = kv.get("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid --mount type {kind!r} in {spec!r}: bind, volume or tmpfs")
    if "target" not in kv:
        raise InvalidArgument(f"invalid --mount {spec!r}: target is required")
    target = _check_target(kv["target"], spec)
    ro = _bool(kv.get("readonly", "false"), spec)
    mount: dict[str, Any] = {"Type": kind, "Source": "", "Destination": target, "RW": not ro,
                             "CopyData": not _bool(kv.get("volume-nocopy", "false"), spec),
                             "Spec": spec, "CreateSource": False}
    if kind == "bind":
        src = kv.get("source", "")
        if not src.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"bind\": source must be an "
                                  f"absolute path: {src!r}")
        if not os.path.exists(src):
            raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does "
                                  f"not exist: {src}")
        mount["Source"] = os.path.normpath(src)
    elif kind == "volume":
        if kv.get("source"):
            mount["Source"] = _volume_source(kv["source"], spec)[1]
    else:
        if kv.get("source"):
            raise InvalidArgument(f"invalid mount config for type \"tmpfs\": source must not be "
                                  f"specified ({spec!r})")
        mount["Data"] = _tmpfs_data(kv.get("tmpfs-size", ""), kv.get("tmpfs-mode", ""), spec)
    return mount


def _tmpfs_data(size: str, mode: str, spec: str) -> str:
    from runtime import units

    data = []
    if size:
        data.append(f"size={units.parse_size(size, '--tmpfs size')}")
    if mode:
        if not re.fullmatch(r"[0-7]{3,4}", mode):
            raise InvalidArgument(f"invalid tmpfs mode {mode!r} in {spec!r}")
        data.append(f"mode={mode}")
    return ",".join(data)


def parse_tmpfs(spec: str) -> dict[str, Any]:
    """``--tmpfs /path[:size=64m,mode=1777,noexec,...]``."""
    target, _, opts = spec.partition(":")
    size = mode = ""
    flags = []
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            size = value
        elif key == "mode":
            mode = value
        elif key in ("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev"):
            flags.append(key)
        else:
            raise InvalidArgument(f"invalid --tmpfs option {opt!r} in {spec!r}")
    return {"Type": "tmpfs", "Source": "", "Destination": _check_target(target, spec),
            "RW": "ro" not in flags, "CopyData": False, "Spec": spec, "CreateSource": False,
            "Data": _tmpfs_data(size, mode, spec), "Flags": flags}


def parse_all(volumes: list[str], mounts: list[str], tmpfs: list[str]) -> list[dict[str, Any]]:
    out = ([parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts]
           + [parse_tmpfs(t) for t in tmpfs])
    seen: set[str] = set()
    for m in out:
        if m["Destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {m['Destination']}")
        seen.add(m["Destination"])
    return out


class VolumeStore:
    """Local volumes of one root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "volumes")

    def _meta(self, name: str) -> str:
        return os.path.join(self.dir, name, "volume.json")

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    def create(self, name: str = "", labels: dict[str, str] | None = None,
               anonymous: bool = False) -> dict[str, Any]:
        """Idempotent for an existing name, as ``docker volume create`` is."""
        from formats.units import rfc3339nano

        if not name:
            name, anonymous = os.urandom(32).hex(), True
        if not _NAME_RE.match(name):
            raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a '
                                  'local '
                                  'volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
        with contextlib.suppress(NotFound):
            return self.get(name)
        private_dir(self.dir)  # a volume's files (setuid ones too) are root's alone
        os.makedirs(self.path(name), mode=0o755, exist_ok=True)
        rec = {"CreatedAt": rfc3339nano(), "Driver": "local", "Labels": labels or {},
               "Mountpoint": self.path(name), "Name": name, "Options": {}, "Scope": "local",
               "Anonymous": anonymous}
        write_atomic(self._meta(name), json.dumps(rec).encode(), 0o666)
        from runtime.journal import event

        event(self.root, "volume", "create", name, driver="local")
        return rec

    def get(self, name: str) -> dict[str, Any]:
        """The volume's record; DamagedState (naming the file) when it is damaged."""
        from runtime.state import read_state_file

        try:
            return read_state_file(self._meta(name), {"Name": str, "Mountpoint": str})
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None

    def all(self, report: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """Every volume; a damaged record is skipped and reported in one line (stderr
        without ``report``)."""
        from runtime.errors import DamagedState
        from runtime.state import report_damaged

        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.scandir(self.dir), key=lambda e: e.name):
                try:
                    out.append(self.get(entry.name))
                except NotFound:
                    continue
                except DamagedState as e:
                    (report or report_damaged)(str(e))
        return out

    def users(self, name: str, containers: list[dict[str, Any]]) -> list[str]:
        return [c["ID"] for c in containers
                if any(m.get("Name") == name for m in (c.get("MountPoints") or {}).values())]

    def remove(self, name: str, containers: list[dict[str, Any]], force: bool = False) -> None:
        from runtime.state import remove_tree

        self.get(name)
        users = self.users(name, containers)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        remove_tree(os.path.join(self.dir, name))
        from runtime.journal import event

        event(self.root, "volume", "destroy", name, driver="local")


def mount_points(paths: Paths, mounts: list[dict[str, Any]], image_volumes: dict[str, Any]
                 ) -> dict[str, dict[str, Any]]:
    """Create what the mounts need; docker's ``MountPoints`` keyed by destination.
    The image's ``VOLUME``s not covered by a mount become anonymous volumes."""
    volumes = VolumeStore(paths.root)
    wanted = list(mounts)
    covered = {m["Destination"] for m in wanted}
    for target in sorted(image_volumes or {}):
        if os.path.normpath(target) not in covered:
            wanted.append({"Type": "volume", "Source": "", "Destination": os.path.normpath(target),
                           "RW": True, "CopyData": True, "Spec": "", "CreateSource": False})
    out: dict[str, dict[str, Any]] = {}
    for m in wanted:
        point = {"Type": m["Type"], "Source": m["Source"], "Destination": m["Destination"],
                 "RW": m["RW"], "Name": "", "Driver": "", "Mode": "" if m["RW"] else "ro",
                 "Propagation": "rprivate" if m["Type"] == "bind" else "",
                 "CopyData": m["CopyData"] and m["Type"] == "volume", "Spec": m.get("Spec", "")}
        if m["Type"] == "volume":
            rec = volumes.create(m["Source"], anonymous=not m["Source"])
            point.update(Name=rec["Name"], Driver="local", Source=rec["Mountpoint"])
        elif m["Type"] == "bind" and m.get("CreateSource") and not os.path.exists(m["Source"]):
            os.makedirs(m["Source"], mode=0o755, exist_ok=True)  # docker's -v does this
        elif m["Type"] == "tmpfs":
            point.update(Data=m.get("Data", ""), Flags=m.get("Flags", []))
        out[m["Destination"]] = point
    return out


def sandbox_mounts(points: dict[str, dict[str, Any]]) -> tuple:
    """(type, source, target, rw, data, copy_up, flags) in mount order (parents first)."""
    return tuple((p["Type"], p["Source"], p["Destination"], bool(p["RW"]), p.get("Data", ""),
                  bool(p.get("CopyData")), tuple(p.get("Flags") or ()))
                 for _, p in sorted(points.items(), key=lambda kv: (kv[0].count("/"), kv[0])))


def inspect_mounts(points: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``docker inspect``'s ``Mounts``."""
    out = []
    for p in (points or {}).values():
        item = {"Type": p["Type"], "Source": p["Source"], "Destination": p["Destination"],
                "Mode": p.get("Mode", ""), "RW": p["RW"], "Propagation": p.get("Propagation", "")}
        if p["Type"] == "volume":
            item = {"Type": "volume", "Name": p["Name"], "Source": p["Source"],
                    "Destination": p["Destination"], "Driver": "local", "Mode": p.get("Mode", ""),
                    "RW": p["RW"], "Propagation": ""}
        out.append(item)
    return out


def remove_anonymous(paths: Paths, cfg: dict[str, Any]) -> None:
    """``box rm -v``: the container's anonymous volumes no other container uses."""
    from runtime.state import Store

    volumes = VolumeStore(paths.root)
    others = list(Store(paths).all())
    for point in (cfg.get("MountPoints") or {}).values():
        name = point.get("Name")
        if not name:
            continue
        with contextlib.suppress(NotFound, Conflict):
            if volumes.get(name).get("Anonymous"):
                volumes.remove(name, others)
