"""What keeps the local stack to its owner: a private state dir and InfluxDB credentials.

The state dir holds every component's data, config and log, and the InfluxDB admin
password; another local user must not list or read any of it (nor plant files in it), so
the dir and its parts are 0700, owned by whoever runs the stack, and an existing looser
one is tightened. The password is random, made on the first ``boxwatch up``, kept in a
0600 file in netrc form (``formats.influx``) that the collector, the shipper,
``boxwatch logs`` and the demo read by path: it never appears in argv, the environment or
a log line.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from formats.atomicfile import write_atomic
from formats.influx import credentials_text, read_credentials

USER = "boxwatch"
PRIVATE_DIR = 0o700
SECRET_FILE = 0o600


class PrivacyError(Exception):
    """The state dir or credentials file cannot be made private; one line."""


def credentials_path(state_dir: Path | str) -> Path:
    """Where the stack keeps its InfluxDB user and password."""
    return Path(state_dir) / "influxdb" / "credentials"


def private_dir(path: Path) -> None:
    """``path`` (and missing parents) exists, owned by us, mode 0700; PrivacyError for a
    dir of another user (its owner could swap what we write there)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.geteuid():
        raise PrivacyError(f"{path} belongs to uid {st.st_uid}, not to the user running the "
                           "stack; choose a state dir of your own")
    if stat.S_IMODE(st.st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)


def ensure_credentials(path: Path) -> tuple[str, str]:
    """The stack's (user, password): read from ``path`` (tightened to 0600), or, on the
    first start, a new random password written there (0600 from its creation)."""
    if path.exists():
        os.chmod(path, SECRET_FILE)
        try:
            return read_credentials(str(path))
        except ValueError as exc:
            raise PrivacyError(str(exc)) from None
    password = secrets.token_urlsafe(32)
    write_atomic(str(path), credentials_text(USER, password).encode(), SECRET_FILE)
    return USER, password
