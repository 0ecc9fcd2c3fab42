"""Settings read from the environment, at entry points only (the CLI, ``hub serve``).

Library code never reads ``os.environ``: an entry point passes its environment to these
functions and hands the results on as explicit arguments.

=================  ===========================================================
``PODIUM_HOME``    Podium's folder: credentials, the embedded hub's data
                   (default ``~/.podium``)
``PODIUM_HUB``     the hub's URL when a command gets no ``--hub``
``PODIUM_API_KEY`` an API key to use instead of the credentials of ``podium login``
=================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "API_KEY_ENV",
    "HOME_ENV",
    "HUB_ENV",
    "env_api_key",
    "env_hub",
    "podium_home",
]

HOME_ENV = "PODIUM_HOME"
HUB_ENV = "PODIUM_HUB"
API_KEY_ENV = "PODIUM_API_KEY"


def podium_home(environ: Mapping[str, str]) -> Path:
    """Podium's folder: ``$PODIUM_HOME`` (``~`` expanded), else ``$HOME/.podium``."""
    configured = environ.get(HOME_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    home = environ.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".podium"


def env_hub(environ: Mapping[str, str]) -> str | None:
    """The hub URL from ``$PODIUM_HUB``, or None if unset or blank."""
    return environ.get(HUB_ENV, "").strip() or None


def env_api_key(environ: Mapping[str, str]) -> str | None:
    """The API key from ``$PODIUM_API_KEY``, or None if unset or blank."""
    return environ.get(API_KEY_ENV, "").strip() or None
