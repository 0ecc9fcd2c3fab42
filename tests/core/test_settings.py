"""Settings from the environment: PODIUM_HOME, PODIUM_HUB, PODIUM_API_KEY."""

from __future__ import annotations

from pathlib import Path

from podium.core.settings import env_api_key, env_hub, podium_home


def test_podium_home_defaults_to_dot_podium_in_home() -> None:
    """Without PODIUM_HOME, Podium's folder is ~/.podium of the given HOME."""
    assert podium_home({"HOME": "/home/ada"}) == Path("/home/ada/.podium")


def test_podium_home_follows_the_variable(tmp_path: Path) -> None:
    """PODIUM_HOME wins over HOME."""
    environ = {"HOME": "/home/ada", "PODIUM_HOME": str(tmp_path / "p")}
    assert podium_home(environ) == tmp_path / "p"


def test_podium_home_expands_the_tilde() -> None:
    """A PODIUM_HOME starting with ~ is expanded to the user's home."""
    home = podium_home({"PODIUM_HOME": "~/elsewhere"})
    assert home.is_absolute()
    assert home.name == "elsewhere"


def test_blank_podium_home_counts_as_unset() -> None:
    """An empty or blank PODIUM_HOME falls back to ~/.podium."""
    assert podium_home({"HOME": "/h", "PODIUM_HOME": "  "}) == Path("/h/.podium")


def test_hub_and_api_key_come_from_their_variables() -> None:
    """PODIUM_HUB and PODIUM_API_KEY are read, stripped; blank means unset."""
    environ = {"PODIUM_HUB": " http://hub:8700 ", "PODIUM_API_KEY": "pdm_x"}
    assert env_hub(environ) == "http://hub:8700"
    assert env_api_key(environ) == "pdm_x"
    assert env_hub({"PODIUM_HUB": " "}) is None
    assert env_api_key({}) is None
