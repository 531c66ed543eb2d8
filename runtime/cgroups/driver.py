"""What the runtime asks of a cgroup driver: the ``Driver`` interface, and the steps of
``create`` both versions take alike (check, drop what the host cannot apply, make the
levels, roll back on failure). The v1 and v2 drivers fill in the files."""

from __future__ import annotations

from runtime.cgroups.base import Resources
from runtime.cgroups.files import CgroupError, rollback, translate
from runtime.cgroups.limits import HostInfo, applicable, check_resources


class Driver:
    """One cgroup version. Paths returned by ``create`` go into the state file.

    The steps both versions take alike live here; a driver supplies ``host``, ``_make``
    (the directories) and ``_apply`` (the limit files)."""

    version: int

    def host(self) -> HostInfo:
        """Online cpus/mems and the features this host's cgroup files offer."""
        raise NotImplementedError

    def validate(self, res: Resources) -> None:
        """Raise runtime.errors.InvalidArgument for limits this host cannot apply."""
        check_resources(res, self.host())

    def warnings(self, res: Resources) -> list[str]:
        """Docker's warnings for limits this host ignores; ``create`` drops those limits."""
        return check_resources(res, self.host())

    def create(self, group: str, res: Resources) -> dict[str, str]:
        """Create ``group`` (e.g. ``box/<id>``), apply ``res``; return {controller: abs path}.

        On failure nothing is left behind.
        """
        group = group.strip("/")
        applied = applicable(res, self.host().features)
        created: list[str] = []
        try:
            paths = self._make(group, created)
            self._apply(paths, applied)
        except CgroupError as err:
            rollback(created)
            raise translate(err) from None
        except BaseException:
            rollback(created)
            raise
        return paths

    def group_paths(self, group: str) -> dict[str, str]:
        """{controller: abs path} ``create(group, ...)`` returns, without creating: what to
        destroy when a monitor died before recording them."""
        raise NotImplementedError

    def _make(self, group: str, created: list[str]) -> dict[str, str]:
        """mkdir ``group`` wherever this version keeps it, appending each new directory to
        ``created``; return {controller: abs path}."""
        raise NotImplementedError

    def _apply(self, paths: dict[str, str], res: Resources) -> None:
        """Write the limits of ``res`` (already ``applicable``) into the new group."""
        raise NotImplementedError

    def _make_levels(self, top: str, group: str, created: list[str]) -> str:
        """mkdir each level of ``group`` under ``top`` (the last must be new), calling the
        ``_entering``/``_made`` hooks; return the group's path. Retries if a concurrent
        destroy removed the ``box`` parent between our mkdirs."""
        import os

        from runtime.errors import BoxError, Conflict

        parts = group.split("/")
        for attempt in range(5):
            path = top
            try:
                for i, part in enumerate(parts):
                    self._entering(path)
                    path = os.path.join(path, part)
                    try:
                        os.mkdir(path)
                        created.append(path)
                    except FileExistsError:
                        if i == len(parts) - 1:
                            raise Conflict(f"cgroup {path} already exists") from None
                    self._made(path)
                return path
            except FileNotFoundError:
                if attempt == 4:
                    raise BoxError(
                        f"cannot create cgroup {path}: its parent keeps vanishing"
                    ) from None
            except OSError as err:
                if isinstance(err, FileExistsError):
                    raise
                raise BoxError(f"cannot create cgroup {path}: {err.strerror}") from None
        raise AssertionError("unreachable")

    def _entering(self, parent: str) -> None:
        """Called on each parent just before its child is made."""

    def _made(self, path: str) -> None:
        """Called on each level of the group once it exists (new or not)."""

    def attach(self, paths: dict[str, str], pid: int) -> None:
        """Move ``pid`` into every controller's group."""

    def pids(self, paths: dict[str, str]) -> list[int]:
        """Processes in the group (host pids)."""

    def oom_kills(self, paths: dict[str, str]) -> int:
        """How many OOM kills the group has seen."""

    def oom_events(self, paths: dict[str, str]) -> int:
        """A non-blocking fd that turns readable when the group may have counted an OOM
        kill (drain it with ``os.read``, then read ``oom_kills``); the caller closes it.
        OSError when this host cannot notify (the caller then polls ``oom_kills``)."""
        raise OSError(95, "no OOM notification")  # EOPNOTSUPP

    def destroy(self, paths: dict[str, str]) -> None:
        """Kill what is left inside and remove every directory; missing is fine."""

    def freeze(self, paths: dict[str, str], frozen: bool) -> None:
        """Freeze (``docker pause``) or thaw every process of the group; returns once the
        kernel reports the group frozen (or thawed). BoxError when it cannot."""
        raise NotImplementedError

    def frozen(self, paths: dict[str, str]) -> bool:
        """Whether the kernel holds the group frozen."""
        raise NotImplementedError

    def update(self, paths: dict[str, str], res: Resources, fields: frozenset[str]) -> None:
        """``docker update``: write the ``fields`` of ``res`` (the container's limits after
        the update, already ``applicable``) into its live group. A zero or negative value
        of a limit the user gave means unlimited. The kernel's refusal is a CgroupError,
        or a BoxError worded as runc words it (a memory limit below the usage)."""
        raise NotImplementedError
