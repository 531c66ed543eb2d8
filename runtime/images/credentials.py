"""Registry credentials in Docker's ``config.json`` shape:
``{"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}}}``.

The file is ``<BOX_CONFIG or ~/.box>/config.json``, mode 0600, written atomically.
Passwords are never printed or logged; errors name the registry, not the secret.
"""

from __future__ import annotations

import base64
import json
import os

from formats.atomicfile import write_atomic
from runtime.errors import BoxError

DOCKER_HUB = "https://index.docker.io/v1/"  # the key docker uses for Docker Hub


class CredentialsError(BoxError):
    """The config file is unreadable or malformed; names the file."""


def config_dir() -> str:
    return os.environ.get("BOX_CONFIG") or os.path.join(os.path.expanduser("~"), ".box")


def _key(registry: str) -> str:
    return DOCKER_HUB if registry in ("docker.io", "index.docker.io", DOCKER_HUB) else registry


class Credentials:
    """Read and write ``auths`` entries; other keys of the file are kept as they were."""

    def __init__(self, directory: str | None = None) -> None:
        self.path = os.path.join(directory or config_dir(), "config.json")

    def _load(self) -> dict[str, object]:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise CredentialsError(f"cannot read {self.path}: {e}") from None
        if not isinstance(data, dict):
            raise CredentialsError(f"{self.path}: not a JSON object")
        return data

    def _save(self, data: dict[str, object]) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        write_atomic(self.path, json.dumps(data, indent="\t").encode(), 0o600)

    def get(self, registry: str) -> tuple[str, str] | None:
        entry = (self._load().get("auths") or {}).get(_key(registry))
        if not isinstance(entry, dict) or not entry.get("auth"):
            return None
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise CredentialsError(f"{self.path}: bad auth entry for {registry}") from None
        return user, password

    def store(self, registry: str, user: str, password: str) -> None:
        data = self._load()
        auths = data.setdefault("auths", {})
        assert isinstance(auths, dict)
        auths[_key(registry)] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        self._save(data)

    def erase(self, registry: str) -> bool:
        """True if there was an entry to remove."""
        data = self._load()
        auths = data.get("auths")
        if not isinstance(auths, dict) or _key(registry) not in auths:
            return False
        del auths[_key(registry)]
        self._save(data)
        return True
