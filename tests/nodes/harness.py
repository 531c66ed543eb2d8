"""Boot a real node (a Debian 12 virtual machine under qemu) and bring its results back.

The image (root filesystem, kernel, initrd) is built once by ``scripts/node-image`` and
cached outside the clone. Each boot gets a second disk, the payload: the project's
dependencies as wheels built here and installed with ``--no-index`` into ``site/``, the
project's source, and the node's script. The guest has no network; it writes
``results/results.json`` (one entry per check) and its log onto the payload disk and
powers off; ``debugfs rdump`` copies them out. The root disk is booted with
``snapshot=on``, so the cached image never changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BOXWATCH_NODE_CACHE", "/var/cache/boxwatch-nodes"))
GUEST_EXTRAS = ("bench", "tests/support", "tests/nodes/guest")  # beside the packages
# pytest, for the host's kernel tests a node runs (its PAYLOAD_FILES), beside the project's
# dependencies (pyproject.toml sets a timeout)
GUEST_TEST_DEPS = ("pytest>=8", "pytest-timeout>=2.2")
# 2 host cores are shared with other work: 2 vCPUs, 1.5 GiB; TCG (KVM guests hang here).
QEMU_CPUS = 2
QEMU_MEMORY = "1536M"
GUEST_PYTHON = (3, 11)  # Debian 12's python3
BOOT_TIMEOUT = float(os.environ.get("BOXWATCH_NODE_TIMEOUT", "900"))
# pytest-timeout for a node test: the first one's setup builds the image (2-3 min fresh,
# 10 allowed), the wheels, and waits for its node's boot
TEST_TIMEOUT = 600 + BOOT_TIMEOUT
CMDLINE = "root=/dev/vda rw console=ttyS0 apparmor=0 panic=-1 quiet loglevel=3"
INITS = {"systemd": "", "script": " init=/usr/local/sbin/boxwatch-node-init"}
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "debootstrap": "debootstrap",
         "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs"}


class NodeError(Exception):
    """The node could not be built or booted; the message says what and shows the logs."""


def missing_tools() -> str:
    """One line naming what this machine lacks to run node tests, or ""."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        return (f"node tests need {', '.join(missing)} (apt-get install {' '.join(missing)}, "
                "or scripts/bootstrap)")
    # the guests run under TCG (KVM guests hang at early boot on these machines)
    proc = subprocess.run(["qemu-system-x86_64", "-accel", "help"], capture_output=True,
                          text=True, check=False)
    if "tcg" not in proc.stdout.split():
        return ("node tests need qemu-system-x86_64 with the TCG accelerator; "
                f"`qemu-system-x86_64 -accel help` says: {' '.join(proc.stdout.split())!r}")
    return ""


def _run(argv: list[str], what: str, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-20:])
        raise NodeError(f"{what} failed ({proc.returncode}):\n{tail}")
    return proc


@dataclass
class Image:
    directory: Path
    built_now: bool
    build_seconds: float

    @property
    def root(self) -> Path:
        return self.directory / "root.img"


def build_image() -> Image:
    """The cached image for the current key, built first if missing."""
    t0 = time.monotonic()
    proc = _run(["bash", str(REPO / "scripts/node-image")], "scripts/node-image")
    directory = Path(proc.stdout.strip().splitlines()[-1])
    built_now = "built in" in proc.stderr
    return Image(directory, built_now, time.monotonic() - t0 if built_now else 0.0)


def _pyproject() -> dict[str, Any]:
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _dependencies() -> list[str]:
    return [*_pyproject()["project"]["dependencies"], *GUEST_TEST_DEPS]


def _sources() -> list[str]:
    """What the guest runs from source: the packages pyproject.toml installs (so a new
    one, such as the bottom layer, comes along) and GUEST_EXTRAS."""
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return [*(pattern.removesuffix("*") for pattern in include), *GUEST_EXTRAS]


def site_packages() -> Path:
    """The dependencies, as wheels built on this host, installed with --no-index into a
    directory the guest puts on sys.path; cached by the dependency list and the Python
    minor version (the guest's is Debian's 3.11, the same ABI)."""
    deps = _dependencies()
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{deps}".encode()).hexdigest()[:16]
    site = CACHE / f"site-{key}"
    if (site / ".ready").exists():
        return site
    wheels = CACHE / f"wheels-{key}"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run([*pip, "wheel", "-w", str(wheels), *deps], "pip wheel")
    shutil.rmtree(site, ignore_errors=True)
    _run([*pip, "install", "--no-index", "--find-links", str(wheels), "--target", str(site),
          *deps], "pip install --no-index")
    (site / ".ready").touch()
    return site


LAUNCHER = """#!/usr/bin/python3 -IS
import sys
sys.path[:0] = ["/mnt/payload/src", "/mnt/payload/site"]
from {module} import {func}
sys.exit({func}())
"""


def make_payload(work: Path, node_script: str, files: tuple[str, ...] = ()) -> Path:
    """The payload disk image: site/, src/ (with ``files``, single files of the repo),
    bin/{box,boxwatch}, run-node.sh."""
    tree = work / "payload"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    shutil.copytree(site_packages(), tree / "site", symlinks=True)
    for rel in _sources():
        shutil.copytree(REPO / rel, tree / "src" / rel,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for rel in files:
        (tree / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tree / "src" / rel)
    if sys.version_info[:2] == GUEST_PYTHON:
        # bytecode made here: the guest would otherwise compile every module again in
        # each boot, seconds under TCG (the .pyc records the source's mtime, which the
        # copy and mkfs.ext4 -d keep)
        _run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree / "src")],
             "compileall")
    (tree / "bin").mkdir()
    for name, module, func in (("box", "runtime.cli", "entry"),
                               ("boxwatch", "boxwatch.cli", "main")):
        launcher = tree / "bin" / name
        launcher.write_text(LAUNCHER.format(module=module, func=func))
        launcher.chmod(0o755)
    (tree / "run-node.sh").write_text(node_script)
    (tree / "results").mkdir()
    disk = work / "payload.img"
    disk.unlink(missing_ok=True)
    _run(["mkfs.ext4", "-q", "-F", "-L", "payload", "-d", str(tree), str(disk), "1G"],
         "mkfs.ext4 (payload)")
    return disk


@dataclass
class Boot:
    """One boot's outcome: the guest's results and logs, and how long it took."""

    node: str
    seconds: float
    results: dict[str, object] = field(default_factory=dict)
    console: str = ""
    guest_log: str = ""
    error: str = ""
    back: Path | None = None  # the guest's results/ directory, copied out

    def file(self, name: str) -> str:
        """A file the guest left in results/ ("" when it did not)."""
        path = self.back / name if self.back else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        """The guest's log tail (or its console's, when the log never came back)."""
        text = self.guest_log or self.console
        name = "guest log" if self.guest_log else "console"
        return f"--- {self.node} {name}, last {lines} lines ---\n" + "\n".join(
            text.splitlines()[-lines:])


RUNNING: set[subprocess.Popen[bytes]] = set()  # the qemu processes of boots under way


def kill_all() -> None:
    """Kill every guest still running (the session ends, or ^C): boots run in threads,
    so the parent-death signal alone would wait for their threads."""
    for proc in list(RUNNING):
        if proc.poll() is None:
            proc.kill()


def _die_with_parent() -> None:
    """In the qemu child: SIGKILL when the test process dies (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, 9)


def boot(node: str, image: Image, work: Path, node_script: str, init: str,
         files: tuple[str, ...] = ()) -> Boot:
    """Boot ``node`` once with ``init`` ("systemd" or "script"), run its script, return
    what came back. Never raises for a guest failure: ``Boot.error`` says what failed."""
    work.mkdir(parents=True, exist_ok=True)
    disk = make_payload(work, node_script, files)
    console = work / "console.log"
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-smp", str(QEMU_CPUS), "-m", QEMU_MEMORY,
            "-kernel", str(image.directory / "vmlinuz"),
            "-initrd", str(image.directory / "initrd.img"),
            "-append", CMDLINE + INITS[init],
            "-drive", f"file={image.root},format=raw,if=virtio,snapshot=on",
            "-drive", f"file={disk},format=raw,if=virtio",
            "-nic", "none", "-display", "none", "-monitor", "none",
            "-serial", f"file:{console}", "-no-reboot"]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    RUNNING.add(proc)
    try:
        out, _ = proc.communicate(timeout=BOOT_TIMEOUT)
        error = f"qemu exited {proc.returncode}: {out.decode()[-500:]}" if proc.returncode else ""
    except subprocess.TimeoutExpired:
        error = f"the guest did not power off within {BOOT_TIMEOUT:.0f} s"
    finally:  # also on ^C: no virtual machine outlives its test
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        RUNNING.discard(proc)
    result = Boot(node, time.monotonic() - t0, error=error)
    result.console = console.read_text(errors="replace") if console.exists() else ""
    back = work / "back"
    shutil.rmtree(back, ignore_errors=True)
    back.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump /results {back}", str(disk)],
                   capture_output=True, check=False)
    result.back = back / "results"
    # the payload (a 1 GB image and its tree) is rebuilt every boot: only what came back
    # and the console stay in the work directory
    disk.unlink(missing_ok=True)
    shutil.rmtree(work / "payload", ignore_errors=True)
    log = back / "results" / "guest.log"
    result.guest_log = log.read_text(errors="replace") if log.exists() else ""
    found = back / "results" / "results.json"
    if found.exists():
        result.results = json.loads(found.read_text())
    elif not result.error:
        result.error = "the guest wrote no results.json"
    return result
