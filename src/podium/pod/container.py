"""The entrypoint of the pod's Docker image: ``python -m podium.pod.container [ARGS...]``.

It finds the pod's config, ``/mount/config/config.yaml`` unless ``$PODIUM_POD_CONFIG``
names another file, and replaces itself (``os.execvp``) with
``podium run-pod CONFIG [ARGS...]``, so ``docker stop``'s SIGTERM reaches the pod itself,
which stops cleanly. Arguments given to ``docker run IMAGE ...`` are passed on to
``run-pod`` (``--hub URL``, ``--policy FILE``, ``--dry-run``); ``$PODIUM_POLICY`` adds
``--policy`` when they have none. ``$PODIUM_HUB`` and ``$PODIUM_API_KEY`` are read by
``run-pod`` itself. See docs/docker.md.

A missing config prints one line on stderr and exits 2, as ``podium`` does for a
:class:`~podium.core.errors.ConfigError`; ``podium`` missing from PATH exits 127.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from podium.core.errors import ConfigError

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "POLICY_ENV", "command", "main", "resolve_config"]

#: Where the image looks for the pod's config (mount its folder at ``/mount/config``).
DEFAULT_CONFIG = Path("/mount/config/config.yaml")
#: Names another config file instead of :data:`DEFAULT_CONFIG`.
CONFIG_ENV = "PODIUM_POD_CONFIG"
#: A local policy file, passed as ``--policy`` unless the arguments have one.
POLICY_ENV = "PODIUM_POLICY"

#: What the image execs: the ``podium`` console script installed with the package.
_PROGRAM = "podium"
#: The shell's exit code for a command that cannot be run.
_CANNOT_EXECUTE = 127


def resolve_config(environ: Mapping[str, str]) -> Path:
    """The pod's config file: ``$PODIUM_POD_CONFIG`` if set, else :data:`DEFAULT_CONFIG`.

    Args:
        environ: The environment to read (the container's ``os.environ``).

    Returns:
        The path of the config file, which exists and is a file.

    Raises:
        ConfigError: If there is no file at that path (missing, or a folder).
    """
    override = environ.get(CONFIG_ENV, "").strip()
    path = Path(override).expanduser() if override else DEFAULT_CONFIG
    if path.is_file():
        return path
    problem = "is a folder, not a file" if path.is_dir() else "does not exist"
    source = f"from ${CONFIG_ENV}" if override else "the default"
    raise ConfigError(
        f"pod config {path} ({source}) {problem}: mount the folder holding config.yaml with "
        f"`-v HOST_DIR:/mount/config:ro`, or set {CONFIG_ENV} to the config's path inside "
        "the container"
    )


def command(environ: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """The command line to exec: ``podium run-pod CONFIG [ARGS...]``.

    Args:
        environ: The environment to read (``PODIUM_POD_CONFIG``, ``PODIUM_POLICY``).
        argv: The arguments given to the container, passed on to ``run-pod`` as they are.

    Returns:
        The argv of ``podium run-pod``, with ``--policy $PODIUM_POLICY`` appended when
        ``PODIUM_POLICY`` is set and ``argv`` has no ``--policy``.

    Raises:
        ConfigError: If the config file is not there (see :func:`resolve_config`).
    """
    config = resolve_config(environ)
    extra = list(argv)
    policy = environ.get(POLICY_ENV, "").strip()
    has_policy = any(arg == "--policy" or arg.startswith("--policy=") for arg in extra)
    if policy and not has_policy:
        extra += ["--policy", policy]
    return [_PROGRAM, "run-pod", str(config), *extra]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Exec ``podium run-pod`` on the pod's config, or exit 2 with one line if it is missing.

    Args:
        argv: The arguments for ``run-pod`` (default: ``sys.argv[1:]``).
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        to_run = command(os.environ, args)
    except ConfigError as exc:
        _fail(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(to_run[0], to_run)  # noqa: S606 - a fixed program, no shell
    except OSError as exc:
        _fail(
            f"error: cannot start {to_run[0]!r}: {exc.strerror or exc}; is Podium installed "
            "and its `podium` command on PATH?"
        )
        sys.exit(_CANNOT_EXECUTE)


def _fail(message: str) -> None:
    """Write one line to stderr, as the ``podium`` command does for its errors."""
    sys.stderr.write(message.rstrip() + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
