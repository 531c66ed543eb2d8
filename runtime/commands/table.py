"""Every ``box`` command in one table: its handler, docker's one-line description and
every path docker accepts for it (``box ps``, ``box container ls``, ...).

Why one table: dispatch (runtime/cli.py), ``box --help``, ``box container --help``,
each command's ``Aliases:`` and the shell completions (runtime/commands/completion.py)
read the same rows, so a verb added here shows up everywhere at once. Plain tuples and
dicts: this module is imported by every ``box`` call, ``box run`` included.
"""

from __future__ import annotations

# key -> (module under runtime/commands, description, paths, preset defaults).
# The handler is ``add_<key>(parser)`` / ``cmd_<key>(paths, args)`` in that module
# (``handler`` below when a path reuses another key's functions). The first path is
# the canonical one; docker's usage line shows the path typed.
_C, _I, _N, _V, _S = "container", "image", "network", "volume", "system"
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # containers
    "attach": ("attach", "Attach local standard input, output, and error streams to a "
               "running container", ("attach", f"{_C} attach")),
    "commit": ("commit", "Create a new image from a container's changes",
               ("commit", f"{_C} commit")),
    "cp": ("cp", "Copy files/folders between a container and the local filesystem",
           ("cp", f"{_C} cp")),
    "create": ("run", "Create a new container", ("create", f"{_C} create")),
    "diff": ("changes", "Inspect changes to files or directories on a container's "
             "filesystem", ("diff", f"{_C} diff")),
    "exec": ("exec", "Execute a command in a running container", ("exec", f"{_C} exec")),
    "export": ("transfer", "Export a container's filesystem as a tar archive",
               ("export", f"{_C} export")),
    "container_inspect": ("info", "Display detailed information on one or more containers",
                          (f"{_C} inspect",)),
    "kill": ("lifecycle", "Kill one or more running containers", ("kill", f"{_C} kill")),
    "logs": ("info", "Fetch the logs of a container", ("logs", f"{_C} logs")),
    "ps": ("info", "List containers", (f"{_C} ls", f"{_C} list", f"{_C} ps", "ps")),
    "pause": ("pause", "Pause all processes within one or more containers",
              ("pause", f"{_C} pause")),
    "port": ("network", "List port mappings or a specific mapping for the container",
             ("port", f"{_C} port")),
    "container_prune": ("system", "Remove all stopped containers", (f"{_C} prune",)),
    "rename": ("changes", "Rename a container", ("rename", f"{_C} rename")),
    "restart": ("lifecycle", "Restart one or more containers", ("restart", f"{_C} restart")),
    "rm": ("lifecycle", "Remove one or more containers",
           (f"{_C} rm", f"{_C} remove", "rm")),
    "run": ("run", "Create and run a new container from an image", ("run", f"{_C} run")),
    "start": ("run", "Start one or more stopped containers", ("start", f"{_C} start")),
    "stats": ("stats", "Display a live stream of container(s) resource usage statistics",
              ("stats", f"{_C} stats")),
    "stop": ("lifecycle", "Stop one or more running containers", ("stop", f"{_C} stop")),
    "top": ("info", "Display the running processes of a container", ("top", f"{_C} top")),
    "unpause": ("pause", "Unpause all processes within one or more containers",
                ("unpause", f"{_C} unpause")),
    "update": ("update", "Update configuration of one or more containers",
               ("update", f"{_C} update")),
    "wait": ("lifecycle", "Block until one or more containers stop, then print their exit "
             "codes", ("wait", f"{_C} wait")),
    # images
    "build": ("build", "Build an image from a Dockerfile",
              (f"{_I} build", "builder build", "build")),
    "history": ("history", "Show the history of an image", (f"{_I} history", "history")),
    "import": ("images", "Import the contents from a tarball to create a filesystem image",
               (f"{_I} import", "import")),
    "image_inspect": ("info", "Display detailed information on one or more images",
                      (f"{_I} inspect",)),
    "load": ("transfer", "Load an image from a tar archive or STDIN", (f"{_I} load", "load")),
    "images": ("images", "List images", (f"{_I} ls", f"{_I} list", "images")),
    "image_prune": ("image_prune", "Remove unused images", (f"{_I} prune",)),
    "pull": ("transfer", "Download an image from a registry", (f"{_I} pull", "pull")),
    "push": ("transfer", "Upload an image to a registry", (f"{_I} push", "push")),
    "rmi": ("images", "Remove one or more images",
            (f"{_I} rm", f"{_I} remove", "rmi")),
    "save": ("transfer", "Save one or more images to a tar archive (streamed to STDOUT by "
             "default)", (f"{_I} save", "save")),
    "tag": ("images", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
            (f"{_I} tag", "tag")),
    # networks and volumes
    "network_connect": ("network", "Connect a container to a network", (f"{_N} connect",)),
    "network_create": ("network", "Create a network", (f"{_N} create",)),
    "network_disconnect": ("network", "Disconnect a container from a network",
                           (f"{_N} disconnect",)),
    "network_inspect": ("network", "Display detailed information on one or more networks",
                        (f"{_N} inspect",)),
    "network_ls": ("network", "List networks", (f"{_N} ls", f"{_N} list")),
    "network_prune": ("network", "Remove all unused networks", (f"{_N} prune",)),
    "network_rm": ("network", "Remove one or more networks", (f"{_N} rm", f"{_N} remove")),
    "volume_create": ("volume", "Create a volume", (f"{_V} create",)),
    "volume_inspect": ("volume", "Display detailed information on one or more volumes",
                       (f"{_V} inspect",)),
    "volume_ls": ("volume", "List volumes", (f"{_V} ls", f"{_V} list")),
    "volume_prune": ("volume", "Remove unused local volumes", (f"{_V} prune",)),
    "volume_rm": ("volume", "Remove one or more volumes", (f"{_V} rm", f"{_V} remove")),
    # the system
    "system_df": ("system", "Show box disk usage", (f"{_S} df",)),
    "events": ("events", "Get real time events from the server", (f"{_S} events", "events")),
    "info": ("sysinfo", "Display system-wide information", (f"{_S} info", "info")),
    "system_prune": ("system", "Remove unused data", (f"{_S} prune",)),
    "inspect": ("info", "Return low-level information on box objects", ("inspect",)),
    "login": ("transfer", "Log in to a registry", ("login",)),
    "logout": ("transfer", "Log out from a registry", ("logout",)),
    "version": ("sysinfo", "Show the box version information", ("version",)),
    "completion": ("completion", "Generate the autocompletion script for the specified "
                   "shell", ("completion",)),
}

# Paths that reuse another key's add_/cmd_ functions with fixed defaults (docker's
# ``container inspect`` is ``inspect --type container``).
HANDLERS: dict[str, tuple[str, dict[str, object]]] = {
    "container_inspect": ("inspect", {"type": "container"}),
    "image_inspect": ("inspect", {"type": "image"}),
}

TAGLINE = "A self-sufficient runtime for containers, without a daemon"
COMMON = ("run", "exec", "ps", "build", "pull", "push", "images", "login", "logout",
          "version", "info")
GROUPS = {"builder": "Manage builds", "container": "Manage containers",
          "image": "Manage images", "network": "Manage networks", "system": "Manage box",
          "volume": "Manage volumes"}
# Commands that never read or write the state root (it is not created for them).
STATELESS = frozenset({"version", "completion"})
# run/create use -h for --hostname, as docker does; they add --help themselves.
NO_SHORT_HELP = frozenset({"run", "create"})


def lookup(words: list[str]) -> tuple[str, int] | None:
    """The key the leading ``words`` name and how many of them it took, or None."""
    if len(words) > 1 and words[0] in GROUPS:
        key = _by_path().get(f"{words[0]} {words[1]}")
        if key:
            return key, 2
    key = _by_path().get(words[0]) if words else None
    return (key, 1) if key else None


_PATHS: dict[str, str] = {}


def _by_path() -> dict[str, str]:
    if not _PATHS:
        _PATHS.update({path: key for key, row in COMMANDS.items() for path in row[2]})
    return _PATHS


def group_rows(group: str) -> list[tuple[str, str]]:
    """(sub-verb, description) of a management group, sorted as docker lists them; a
    key's first path in the group is its name there (``container ls``, not ``ps``)."""
    rows = []
    for _mod, desc, paths in COMMANDS.values():
        sub = next((p.partition(" ")[2] for p in paths if p.startswith(f"{group} ")), "")
        if sub:
            rows.append((sub, desc))
    return sorted(rows)


def top_level() -> list[tuple[str, str]]:
    """(verb, description) of every one-word command."""
    return sorted((path, row[1]) for row in COMMANDS.values() for path in row[2]
                  if " " not in path)


def _section(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = max(12, *(len(v) + 2 for v, _ in rows))
    return [f"{title}:", *(f"  {v.ljust(width)}{d}" for v, d in rows), ""]


def main_help() -> str:
    """``box --help``: docker's sections."""
    verbs = dict(top_level())
    lines = ["", "Usage:  box [OPTIONS] COMMAND", "", TAGLINE, ""]
    lines += _section("Common Commands", [(v, verbs[v]) for v in COMMON])
    lines += _section("Management Commands", sorted(GROUPS.items()))
    lines += _section("Commands", [(v, d) for v, d in verbs.items() if v not in COMMON])
    lines += ["Global Options:",
              "      --exec-root string   Root directory for execution state files "
              '(default "/run/box")',
              "  -h, --help               Print usage",
              '      --root string        Root directory of persistent box state (default '
              '"/var/lib/box")',
              "  -v, --version            Print version information and quit", "",
              "Run 'box COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def group_help(group: str) -> str:
    """``box container --help`` and ``box container`` alone."""
    lines = ["", f"Usage:  box {group} COMMAND", "", GROUPS[group], ""]
    lines += _section("Commands", group_rows(group))
    lines += [f"Run 'box {group} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)
