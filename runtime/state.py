"""The Docker-compatible state directory: one ``config.v2.json`` and ``hostconfig.json``
per container, names reserved atomically, a lock per container.

This is the only module that writes those files; the collector and the shipper read
them (see ARCHITECTURE.md, "the one rule of the layout").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator

from formats.atomicfile import write_atomic_many
from formats.lazyre import lazy_compile
from runtime.errors import Conflict, DamagedState, InvalidArgument, NotFound
from runtime.paths import Paths

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms of import on the `box run` path
    from typing import Any

CONFIG = "config.v2.json"
HOSTCONFIG = "hostconfig.json"
# Docker's rule for container names.
_NAME_RE = lazy_compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def new_id() -> str:
    return os.urandom(32).hex()


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def write_json_atomic(path: str, data: Any) -> None:
    """One state file (``box update``'s hostconfig.json): never torn, durable
    (formats.atomicfile: fsync, rename, fsync the directory)."""
    write_atomic_many({path: _json_bytes(data)}, 0o600)


# State of a container that never ran; Docker's zero time for the times.
ZERO_TIME = "0001-01-01T00:00:00Z"
CREATED_STATE = {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                 "OOMKilled": False, "RemovalInProgress": False, "Dead": False, "Pid": 0,
                 "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def new_container_doc(cdir: str, cid: str, name: str, argv: list[str], config: dict[str, Any],
                      image_id: str, lower_dirs: list[str], host: dict[str, Any]) -> dict[str, Any]:
    """A new container's ``config.v2.json`` in Docker's field names (the ones readers
    know from ``formats.statefile``); what only box needs goes under ``Box``."""
    from formats.statefile import BOX_KEY, log_file
    from formats.units import rfc3339nano

    return {
        "ID": cid,
        "Created": rfc3339nano(),
        "Path": argv[0],
        "Args": argv[1:],
        "Config": config,
        "Image": image_id,
        "State": dict(CREATED_STATE),
        "Name": "/" + name.lstrip("/"),
        "RestartCount": 0,
        "Driver": "overlay2",
        "LogPath": log_file(cdir, cid),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HasBeenManuallyStopped": False,
        BOX_KEY: {"LowerDirs": lower_dirs},
        "HostConfig": host,
    }


class Store:
    """Containers under ``<root>/containers``; names under ``<root>/names``."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    # -- names --------------------------------------------------------------
    def _name_path(self, name: str) -> str:
        return os.path.join(self.paths.root, "names", name)

    def reserve_name(self, name: str, cid: str) -> None:
        if not _NAME_RE.match(name):
            raise InvalidArgument(
                f'Invalid container name ("{name}"), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        path = self._name_path(name.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            holder = _read_text(path).strip() or "?"
            raise Conflict(
                f'Conflict. The container name "/{name.lstrip("/")}" is already in use by '
                f'container "{holder}". You have to remove (or rename) that container to be '
                "able to reuse that name.") from None
        with os.fdopen(fd, "w") as f:
            f.write(cid)

    def release_name(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._name_path(name.lstrip("/")))

    # -- records ------------------------------------------------------------
    def ids(self) -> list[str]:
        try:
            return [e.name for e in os.scandir(self.paths.containers)
                    if e.is_dir() and os.path.exists(os.path.join(e.path, CONFIG))]
        except FileNotFoundError:
            return []

    def load(self, cid: str) -> dict[str, Any]:
        """Both state files of a container; DamagedState (naming the file) when one is
        empty, cut short, not JSON or lacks what every reader relies on."""
        cdir = self.paths.container_dir(cid)
        try:
            cfg = read_state_file(os.path.join(cdir, CONFIG), _REQUIRED)
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid}") from None
        try:
            cfg["HostConfig"] = read_state_file(os.path.join(cdir, HOSTCONFIG), {})
        except FileNotFoundError:
            cfg["HostConfig"] = {}
        return cfg

    def save(self, cfg: dict[str, Any], durable: bool = True) -> None:
        """Both files (hostconfig.json only when new), one directory fsync; ``durable``
        False for facts a reboot ends (formats.atomicfile.write_atomic_many)."""
        cdir = self.paths.container_dir(cfg["ID"])
        host = cfg.get("HostConfig")
        body = {k: v for k, v in cfg.items() if k != "HostConfig"}
        files = {os.path.join(cdir, CONFIG): _json_bytes(body)}
        host_path = os.path.join(cdir, HOSTCONFIG)
        if host is not None and not os.path.exists(host_path):
            files[host_path] = _json_bytes(host)
        write_atomic_many(files, 0o600, durable)

    def all(self, report: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
        """Every container. One whose state is damaged is skipped and passed to
        ``report`` as one line (without ``report``: to stderr), so one bad file never
        hides the others."""
        for cid in self.ids():
            try:
                yield self.load(cid)
            except NotFound:
                continue  # removed while we listed
            except DamagedState as e:
                (report or report_damaged)(str(e))

    def resolve(self, ref: str) -> str:
        """A name (with or without '/'), a full id or a unique id prefix -> the id."""
        if not ref:
            raise NotFound("No such container: ")
        name_path = self._name_path(ref.lstrip("/"))
        if "/" not in ref.lstrip("/") and os.path.isfile(name_path):
            cid = _read_text(name_path).strip()
            if os.path.exists(os.path.join(self.paths.container_dir(cid), CONFIG)):
                return cid
        if re.fullmatch(r"[0-9a-f]{1,64}", ref):
            matches = [c for c in self.ids() if c.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise NotFound(f"Multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    @contextlib.contextmanager
    def lock(self, cid: str) -> Iterator[None]:
        """Serialises every read-modify-write of one container's state."""
        lock_path = os.path.join(self.paths.locks, f"{cid}.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(self.paths.locks, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, cid: str, box: dict[str, Any] | None = None, *, durable: bool = True,
               **state: Any) -> dict[str, Any]:
        """Merge ``state`` into ``State`` (top-level keys prefixed ``top_``; ``box`` into the
        runtime's own ``Box`` key) under the lock, in one read and one write."""
        with self.lock(cid):
            cfg = self.load(cid)
            if box:
                cfg["Box"] = {**(cfg.get("Box") or {}), **box}
            for key, value in state.items():
                if key.startswith("top_"):
                    cfg[key[4:]] = value
                else:
                    cfg["State"][key] = value
            self.save(cfg, durable)
            return cfg

    def delete(self, cfg: dict[str, Any]) -> None:
        """Remove every file of the container; the caller has stopped it and its cgroup."""
        cid = cfg["ID"]
        self.release_name(cfg.get("Name", ""))
        for path in (self.paths.container_dir(cid), self.paths.overlay_dir(cid),
                     self.paths.run_dir(cid)):
            remove_tree(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.paths.locks, f"{cid}.lock"))


# What every reader of config.v2.json relies on, with its type.
_REQUIRED = {"ID": str, "Name": str, "Created": str, "Path": str, "State": dict,
             "Config": dict}


def json_object(data: bytes, path: str) -> dict[str, Any]:
    """``data`` (read from ``path``) as the JSON object a state file must hold; anything
    else is a DamagedState naming the file."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        what = "empty file" if not data.strip() else f"invalid JSON: {e}"
        raise DamagedState(f"damaged state file {path}: {what}") from None
    if not isinstance(doc, dict):
        raise DamagedState(f"damaged state file {path}: expected a JSON object, "
                           f"got {type(doc).__name__}")
    return doc


def read_state_file(path: str, required: dict[str, type]) -> dict[str, Any]:
    """A JSON object from a state file, checked for ``required`` keys and their types.
    Every way the file can be damaged (empty, cut short, garbage, another JSON type, a
    key missing) becomes one DamagedState naming the file; FileNotFoundError passes."""
    with open(path, "rb") as f:
        doc = json_object(f.read(), path)
    for key, kind in required.items():
        if not isinstance(doc.get(key), kind):
            raise DamagedState(f"damaged state file {path}: {key!r} missing or not "
                               f"of type {_TYPE_NAMES[kind]}")
    if "State" in required and not isinstance(doc["State"].get("Status"), str):
        raise DamagedState(f"damaged state file {path}: 'State.Status' missing")
    return doc


_TYPE_NAMES = {str: "string", dict: "object", list: "list", int: "integer"}


_reported: set[str] = set()


def report_damaged(message: str) -> None:
    """One line on stderr per damaged file, however often one command reads it."""
    import sys

    if message not in _reported:
        _reported.add(message)
        print(f"box: {message}", file=sys.stderr)


def remove_tree(path: str) -> None:
    """``rm -rf`` without following links; gone already is fine. (Not shutil: it imports
    the archive codecs, ~2 ms, and this runs at the end of every ``box run --rm``.)"""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: tells a live process from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def process_alive(pid: int, start_time: int | None) -> bool:
    if pid <= 0:
        return False
    st = process_start_time(pid)
    if st is None:
        return False
    if start_time is not None and st != start_time:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:data.rindex(b")") + 3] != b"Z"
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise


def monitor_alive(cfg: dict[str, Any]) -> bool:
    """Whether the container's monitor (pid and start time in the state) still runs."""
    box = cfg.get("Box") or {}
    return process_alive(box.get("MonitorPid", 0), box.get("MonitorStart"))


def effective_state(cfg: dict[str, Any]) -> dict[str, Any]:
    """The State as a reader should see it: a running container whose monitor died
    (``kill -9``) is reported as dead, like Docker reports a container it lost."""
    state = dict(cfg["State"])
    if state.get("Status") in ("running", "restarting", "paused") and not monitor_alive(cfg):
        state.update(Status="dead", Running=False, Restarting=False, Paused=False, Dead=True)
    return state


def is_running(cfg: dict[str, Any]) -> bool:
    """Running (paused too: its processes are there, frozen) or restarting, as a reader
    of the state file should see it."""
    return effective_state(cfg)["Status"] in ("running", "restarting", "paused")
