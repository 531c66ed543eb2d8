"""Typed errors of the runtime, each carrying Docker's exit code.

The CLI prints ``str(err)`` as one line on stderr and exits with ``err.exit_code``:
125 for anything the runtime refused or failed at, 126 when the command cannot be
executed, 127 when it was not found (Docker's codes).
"""

from __future__ import annotations


class BoxError(Exception):
    """A failure the user should see as one clear line."""

    exit_code = 125

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InvalidArgument(BoxError):
    """A flag value that cannot be used; raised before anything is created."""


class NotFound(BoxError):
    """No such container, image, network or volume."""


class Conflict(BoxError):
    """A name in use, a container running when it must not be, an image in use."""


class DamagedState(BoxError):
    """A state file (container, image store, network, volume) that is empty, cut short,
    not JSON or not the shape expected. The message names the file; a listing reports
    it in one line and goes on with the others."""
