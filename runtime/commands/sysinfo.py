"""``box version`` and ``box info`` / ``box system info``: docker's sections and JSON
field names, filled from the state root and the host (no daemon to ask).

The JSON follows docker's (``{{json .}}`` of ``docker info`` is the engine's ``Info``
with ``ClientInfo`` beside it), so scripts written against docker read the same keys.
"""

from __future__ import annotations

import os
import platform
import sys

from runtime.flags import FlagParser, Namespace
from runtime.paths import Paths

VERSION = "0.1.0"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
# statfs magic -> docker's name of the backing filesystem (moby's fsutils names).
_BACKING = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "xfs": "xfs", "btrfs": "btrfs",
            "tmpfs": "tmpfs", "zfs": "zfs", "overlay": "overlayfs", "f2fs": "f2fs"}


def short_version() -> str:
    """``box -v``, as ``docker -v`` prints it."""
    return f"box version {VERSION}"


def _os_arch() -> str:
    return f"linux/{_ARCH.get(platform.machine(), platform.machine())}"


def _version_doc() -> dict[str, dict[str, object]]:
    py = platform.python_version()
    client = {"Version": VERSION, "ApiVersion": "n/a", "PythonVersion": py,
              "Os": "linux", "Arch": _ARCH.get(platform.machine(), platform.machine())}
    server = {"Platform": {"Name": "box (daemonless)"}, "Version": VERSION,
              "ApiVersion": "n/a", "PythonVersion": py, "Os": "linux", "Arch": client["Arch"],
              "KernelVersion": platform.release(), "Experimental": False}
    return {"Client": client, "Server": server}


def add_version(p: FlagParser) -> None:
    p.add_argument("-f", "--format", help="Format output using a custom template:\n"
                   "'json':             Print in JSON format\n"
                   "'TEMPLATE':         Print output using the given Go template")


def cmd_version(paths: Paths, args: Namespace) -> int:
    doc = _version_doc()
    if args.format:
        print(_render(args.format, doc))
        return 0
    c, s = doc["Client"], doc["Server"]
    print(f"""Client:
 Version:           {c['Version']}
 API version:       {c['ApiVersion']}
 Python version:    {c['PythonVersion']}
 OS/Arch:           {_os_arch()}

Server: box (daemonless)
 Engine:
  Version:          {s['Version']}
  API version:      {s['ApiVersion']}
  Python version:   {s['PythonVersion']}
  OS/Arch:          {_os_arch()}
  Kernel Version:   {s['KernelVersion']}
  Experimental:     false""")
    return 0


def _render(fmt: str, doc: object) -> str:
    import json

    if fmt == "json":
        return json.dumps(doc, separators=(",", ":"))
    from runtime.format.template import compile_template

    return compile_template(fmt).render(doc)


# -- info ---------------------------------------------------------------------------
def backing_fs(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The filesystem ``path`` lives on (the longest mount point above it)."""
    path = os.path.realpath(path)
    best, fstype = "", "unknown"
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            kind = fields[fields.index("-") + 1]
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, fstype = point, kind
    return _BACKING.get(fstype, fstype)


def _os_name(os_release: str = "/etc/os-release") -> str:
    try:
        with open(os_release) as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def info_doc(paths: Paths, cgroup_root: str = "/sys/fs/cgroup") -> dict[str, object]:
    """docker's ``Info`` fields, counted from the state root."""
    from cgroupstats.layout import detect
    from runtime.commands.stats import host_cpu, host_memory
    from runtime.images.store import ImageStore
    from runtime.state import Store, effective_state, report_damaged

    states = [effective_state(c)["Status"] for c in Store(paths).all()]
    running = sum(s in ("running", "restarting") for s in states)
    paused = sum(s == "paused" for s in states)
    images = ImageStore(paths.root).list(report=report_damaged)
    os.makedirs(paths.root, exist_ok=True)
    backing = backing_fs(paths.root)
    machine = platform.machine()
    return {
        "ID": "", "Containers": len(states), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(states) - running - paused,
        "Images": len(images), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing], ["Supports d_type", "true"]],
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(detect(cgroup_root).version),
        "KernelVersion": platform.release(), "OperatingSystem": _os_name(), "OSType": "linux",
        "Architecture": machine, "NCPU": host_cpu()[1], "MemTotal": host_memory(),
        "DockerRootDir": paths.root, "ExecRoot": paths.exec_root, "Name": platform.node(),
        "ServerVersion": VERSION, "Plugins": {"Volume": ["local"],
                                              "Network": ["bridge", "host", "none"],
                                              "Log": ["json-file"]},
        "ClientInfo": {"Version": VERSION, "Context": "default", "Debug": False},
    }


def add_info(p: FlagParser) -> None:
    add_version(p)


def cmd_info(paths: Paths, args: Namespace) -> int:
    from runtime.format.human import bytes_size

    doc = info_doc(paths)
    if args.format:
        print(_render(args.format, doc))
        return 0
    d = doc
    driver_status = "".join(f"  {k}: {v}\n" for k, v in d["DriverStatus"])
    plugins = d["Plugins"]
    sys.stdout.write(f"""Client:
 Version:    {VERSION}
 Context:    default
 Debug Mode: false

Server:
 Containers: {d['Containers']}
  Running: {d['ContainersRunning']}
  Paused: {d['ContainersPaused']}
  Stopped: {d['ContainersStopped']}
 Images: {d['Images']}
 Server Version: {VERSION}
 Storage Driver: overlay2
{driver_status} Logging Driver: json-file
 Cgroup Driver: {d['CgroupDriver']}
 Cgroup Version: {d['CgroupVersion']}
 Plugins:
  Volume: {' '.join(plugins['Volume'])}
  Network: {' '.join(plugins['Network'])}
  Log: {' '.join(plugins['Log'])}
 Kernel Version: {d['KernelVersion']}
 Operating System: {d['OperatingSystem']}
 OSType: linux
 Architecture: {d['Architecture']}
 CPUs: {d['NCPU']}
 Total Memory: {bytes_size(int(d['MemTotal']))}
 Name: {d['Name']}
 Box Root Dir: {d['DockerRootDir']}
 Debug Mode: false
 Experimental: false
 Live Restore Enabled: false
""")
    return 0
