"""``podium hub serve`` as a real process on a real port, on SQLite and on PostgreSQL,
driven by the ``podium`` commands a user types."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
_READY = re.compile(r"^Hub listening on (http://127\.0\.0\.1:(\d+))$")
_START_TIMEOUT_S = 60.0


@dataclass
class Hub:
    """A running hub process and its URL."""

    process: subprocess.Popen[str]
    url: str


def _environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_HUB", "PODIUM_API_KEY")}
    return {**env, "PODIUM_HOME": str(home), "COLUMNS": "200"}


def podium(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m podium ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "podium", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )


def _wait_ready(process: subprocess.Popen[str]) -> str:
    """The URL from the hub's ready line, waiting at most ``_START_TIMEOUT_S``."""
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            break
        line = process.stdout.readline()
        if not line:
            _, err = process.communicate(timeout=10)
            pytest.fail(f"the hub exited with {process.returncode} before it was ready:\n{err}")
        match = _READY.match(line.rstrip("\n"))
        if match:
            return match.group(1)
        pytest.fail(f"unexpected line on the hub's stdout: {line!r}")
    pytest.fail(f"the hub did not say it was listening within {_START_TIMEOUT_S:g} s")


@contextmanager
def running_hub(env: dict[str, str], *options: str) -> Iterator[Hub]:
    """``podium hub serve --port 0 OPTIONS``, stopped with Ctrl-C (SIGINT) afterwards,
    which must end it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "podium", "hub", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield Hub(process, _wait_ready(process))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert out == "", "only the one ready line goes to stdout"


def _user_session(env: dict[str, str], hub: Hub) -> None:
    """Log in, create an API key, list pods: the commands work against ``hub``."""
    login = podium(
        "login", "--hub", hub.url, "--username", "alice", "--password-stdin",
        env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == f"Logged in to {hub.url} as alice."
    created = podium("api-key", "create", "ci", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("pdm_")
    pods = podium("pods", "list", "--json", env=env)
    assert pods.returncode == 0, pods.stderr
    assert json.loads(pods.stdout) == {"pods": []}
    whoami = podium("whoami", "--json", env={**env, "PODIUM_API_KEY": key})
    assert json.loads(whoami.stdout)["via"] == "api-key"
    health = httpx.get(f"{hub.url}/api/v1/health", timeout=10)
    assert health.json()["status"] == "ok"


def test_serve_on_sqlite(tmp_path: Path) -> None:
    """Create a user offline, serve, log in, make an API key, list pods; Ctrl-C stops the
    hub cleanly and a restart keeps the data."""
    env = _environ(tmp_path / "home")
    data = ["--data-dir", str(tmp_path / "hub")]
    created = podium(
        "hub", "create-user", "alice", "--admin", "--password-stdin", *data,
        env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with running_hub(env, *data) as hub:
        _user_session(env, hub)
        key_line = podium("api-key", "list", "--json", env=env)
        assert json.loads(key_line.stdout)[0]["name"] == "ci"
    assert (tmp_path / "hub" / "hub.db").exists()
    with running_hub(env, *data) as again:
        login = podium(
            "login", "--hub", again.url, "--username", "alice", "--password-stdin",
            env=env, stdin=PASSWORD,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        keys = podium("api-key", "list", "--json", env=env)
        assert [k["name"] for k in json.loads(keys.stdout)] == ["ci"]


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    """A port already in use is a one-line error (exit 2), not a traceback."""
    env = _environ(tmp_path / "home")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = podium(
            "hub", "serve", "--port", str(port), "--data-dir", str(tmp_path / "hub"), env=env
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: cannot listen on http://127.0.0.1:{port}")
    assert "Traceback" not in result.stderr


def test_serve_with_unreachable_database(tmp_path: Path) -> None:
    """A --db that cannot be reached is a one-line error (exit 2) without the password."""
    env = _environ(tmp_path / "home")
    result = podium(
        "hub", "serve", "--port", "0", "--data-dir", str(tmp_path / "hub"),
        "--db", "postgresql://podium:hunter2@127.0.0.1:1/nothing", env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "cannot open the hub's database" in result.stderr
    assert "hunter2" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """The same session with the hub's records in PostgreSQL (``--db``)."""
    env = _environ(tmp_path / "home")
    data = ["--data-dir", str(tmp_path / "hub"), "--db", postgres_url]
    created = podium(
        "hub", "create-user", "alice", "--password-stdin", *data, env=env, stdin=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    with running_hub(env, *data) as hub:
        _user_session(env, hub)
    assert not (tmp_path / "hub" / "hub.db").exists()
