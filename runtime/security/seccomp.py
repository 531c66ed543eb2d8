"""Seccomp profiles: Docker's default (``seccomp_default.json``, in our own structure),
``--security-opt seccomp=unconfined|PROFILE.json`` (a profile in Docker's format) and
``no-new-privileges``, compiled with libseccomp for the container's capability set.

A profile here is {"default_action", "default_errno", "allow": [names], "rules": [...]};
each rule has "syscalls" and optional "action"/"errno", "args" ([index, op, value,
value2]), "caps" / "not_caps" (conditions on the container's capabilities), "arches" /
"not_arches" (``uname -m`` names) and "min_kernel". Docker applies none to privileged
containers.
"""

from __future__ import annotations

import json
import os

from formats.atomicfile import write_atomic
from runtime.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.security.libseccomp import Filter

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp_default.json")
_DOCKER_OPS = {"SCMP_CMP_NE": "ne", "SCMP_CMP_LT": "lt", "SCMP_CMP_LE": "le",
               "SCMP_CMP_EQ": "eq", "SCMP_CMP_GE": "ge", "SCMP_CMP_GT": "gt",
               "SCMP_CMP_MASKED_EQ": "masked_eq"}
_DOCKER_ACTIONS = {"SCMP_ACT_ALLOW": "allow", "SCMP_ACT_ERRNO": "errno",
                   "SCMP_ACT_KILL": "kill_thread", "SCMP_ACT_KILL_THREAD": "kill_thread",
                   "SCMP_ACT_KILL_PROCESS": "kill_process", "SCMP_ACT_TRAP": "trap",
                   "SCMP_ACT_LOG": "log"}
_DOCKER_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
# moby's archMap: the ABIs a kernel of this machine also runs (int 0x80 and x32 syscalls
# on x86_64, AArch32 on arm64) get the same rules. A filter of the native ABI alone
# kills every such syscall (libseccomp's bad-arch action), which Docker does not.
SUB_ARCHES = {"x86_64": ("x86", "x32"), "aarch64": ("arm",)}
_FILTER_FORMAT = "arches2-tree"  # in the cache key: programs built before the sub-ABIs are stale


def parse_security_opts(values: list[str]) -> list[str]:
    """``--security-opt`` values -> HostConfig.SecurityOpt; a profile file is read and
    stored as its JSON text (as the docker CLI sends it), checked now."""
    out = []
    for value in values:
        key, sep, arg = value.partition("=")
        if key == "no-new-privileges" and (not sep or arg in ("true", "false")):
            if arg != "false":
                out.append("no-new-privileges")
        elif key == "seccomp" and sep and arg:
            if arg == "unconfined":
                out.append("seccomp=unconfined")
                continue
            try:
                with open(arg) as f:
                    text = f.read()
            except OSError as e:
                raise InvalidArgument(f"opening seccomp profile ({arg}) failed: "
                                      f"{e.strerror.lower()}") from None
            try:
                doc = json.loads(text)
                from_docker(doc)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise InvalidArgument(f"decoding seccomp profile ({arg}) failed: {e}") from None
            out.append("seccomp=" + json.dumps(doc, separators=(",", ":")))
        else:
            raise InvalidArgument(f'invalid --security-opt: "{value}"')
    return out


def from_docker(doc: dict[str, Any]) -> dict[str, Any]:
    """A profile in Docker's format -> ours; ValueError/KeyError/TypeError if malformed."""
    if not isinstance(doc, dict) or "defaultAction" not in doc:
        raise ValueError("no defaultAction")
    default = _DOCKER_ACTIONS.get(doc["defaultAction"])
    if default is None:
        raise ValueError(f"unknown defaultAction {doc['defaultAction']!r}")
    rules = []
    for entry in doc.get("syscalls") or []:
        names = entry.get("names") or ([entry["name"]] if entry.get("name") else [])
        action = _DOCKER_ACTIONS.get(entry.get("action"))
        if action is None or not all(isinstance(n, str) for n in names):
            raise ValueError(f"bad syscalls entry {json.dumps(entry)[:80]}")
        rule: dict[str, Any] = {"syscalls": names, "action": action}
        if action == "errno":
            rule["errno"] = int(entry.get("errnoRet") or 1)
        if entry.get("args"):
            rule["args"] = [[int(a["index"]), _DOCKER_OPS[a["op"]], int(a["value"]),
                             int(a.get("valueTwo") or 0)] for a in entry["args"]]
        for key, caps_key, arch_key in (("includes", "caps", "arches"),
                                        ("excludes", "not_caps", "not_arches")):
            cond = entry.get(key) or {}
            if cond.get("caps"):
                rule[caps_key] = [c.removeprefix("CAP_") for c in cond["caps"]]
            if cond.get("arches"):
                rule[arch_key] = [_DOCKER_ARCHES.get(a, a) for a in cond["arches"]]
            if key == "includes" and cond.get("minKernel"):
                rule["min_kernel"] = cond["minKernel"]
        rules.append(rule)
    return {"default_action": default, "default_errno": int(doc.get("defaultErrnoRet") or 1),
            "allow": [], "rules": rules}


def _load_profile(custom: str | None) -> dict[str, Any]:
    """The profile of a ``seccomp=JSON`` option (Docker's format), else the default."""
    if custom is not None:
        return from_docker(json.loads(custom.removeprefix("seccomp=")))
    with open(DEFAULT_PROFILE) as f:
        return json.load(f)


def _kernel_at_least(version: str) -> bool:
    def nums(text: str) -> tuple[int, ...]:
        return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in text.split(".")[:2])

    return nums(os.uname().release) >= nums(version)


def _action(rule: dict[str, Any]) -> int:
    from runtime.security import libseccomp as ls

    name = rule.get("action") or ("errno" if "errno" in rule else "allow")
    if name == "errno":
        return ls.act_errno(int(rule.get("errno", 1)))
    return {"allow": ls.ACT_ALLOW, "kill_thread": ls.ACT_KILL_THREAD,
            "kill_process": ls.ACT_KILL_PROCESS, "trap": ls.ACT_TRAP, "log": ls.ACT_LOG}[name]


def program_for(host: dict[str, Any], caps: list[str], cache_dir: str) -> bytes | None:
    """The compiled BPF of the container's profile for ``caps``, or None (unconfined).

    Compiling Docker's profile with libseccomp takes ~15 ms, so the program is kept in
    ``cache_dir`` under a key of the profile (the default file's size and mtime, or the
    text of a user profile), the capabilities, the kernel and the architecture."""
    from runtime.caps import mask

    opts = host.get("SecurityOpt") or []
    if host.get("Privileged") or "seccomp=unconfined" in opts:
        return None
    custom = next((o for o in opts if o.startswith("seccomp=")), None)
    if custom is None:  # the common case: no hashlib (~4 ms of import on `box run`)
        st = os.stat(DEFAULT_PROFILE)
        source = f"default-{st.st_size}-{st.st_mtime_ns}"
    else:
        import hashlib

        source = "custom-" + hashlib.sha256(custom.encode()).hexdigest()[:32]
    uname = os.uname()
    key = (f"{source}-{mask(caps):x}-{uname.release}-{uname.machine}-{_FILTER_FORMAT}"
           .replace("/", "_"))
    path = os.path.join(cache_dir, f"{key}.bpf")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    filt = build_filter(_load_profile(custom), caps)
    try:
        program = filt.export()
    finally:
        filt.release()
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    write_atomic(path, program, 0o666)
    return program


def build_filter(profile: dict[str, Any], caps: list[str]) -> Filter:
    """The libseccomp filter of ``profile`` for a process holding ``caps`` (names)."""
    from runtime.security.libseccomp import OPS, Filter

    default = _action({"action": profile.get("default_action", "errno"),
                       "errno": profile.get("default_errno", 1)})
    filt = Filter(default)
    have = set(caps)
    arch = os.uname().machine
    try:
        for sub in SUB_ARCHES.get(arch, ()):
            filt.add_arch(sub)
    except BaseException:
        filt.release()
        raise
    allow = _action({})
    for name in profile.get("allow") or ():
        nr = filt.syscall_number(name)
        if nr >= 0:
            filt.add(allow, nr, [])
    for rule in profile.get("rules") or ():
        if not (have.issuperset(rule.get("caps") or ())
                and not have.intersection(rule.get("not_caps") or ())
                and arch in rule.get("arches", (arch,))
                and arch not in rule.get("not_arches", ())
                and _kernel_at_least(rule.get("min_kernel", "0"))):
            continue
        action = _action(rule)
        args = [(a[0], OPS[a[1]], a[2], a[3] if len(a) > 3 else 0) for a in rule.get("args") or ()]
        for name in rule["syscalls"]:
            nr = filt.syscall_number(name)
            if nr >= 0:
                filt.add(action, nr, args)
    return filt
