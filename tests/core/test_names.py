"""The one name rule shared by the hub and the relay's parties."""

from __future__ import annotations

import re

import pytest

from podium.core import names
from podium.core.messages import pod_party
from podium.hub import models

VALID = ["a", "0", "alice", "acme-corp", "x_1", "a" * 63]
INVALID = ["", "-a", "_a", "Alice", "a.b", "a/b", "a b", "é", "a" * 64, "a\n", None, 7]


@pytest.mark.parametrize("name", VALID)
def test_valid_names_pass_every_form_of_the_rule(name: str) -> None:
    """A valid name passes is_valid_name, the anchored pattern and the fragment alike."""
    assert names.is_valid_name(name)
    assert re.fullmatch(names.NAME_PATTERN, name)
    assert re.fullmatch(names.NAME_CHARS, name)


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names_fail_every_form_of_the_rule(name: object) -> None:
    """An invalid name (or a non-string) fails is_valid_name and the anchored pattern."""
    assert not names.is_valid_name(name)
    assert not isinstance(name, str) or re.fullmatch(names.NAME_PATTERN, name) is None


def test_the_hub_and_the_relay_share_the_rule() -> None:
    """The hub re-exports the core rule, and party names are built from it."""
    assert models.NAME_PATTERN is names.NAME_PATTERN
    assert models.is_valid_name is names.is_valid_name
    assert pod_party("acme", "a" * 63) == "acme." + "a" * 63
    with pytest.raises(ValueError, match="not a valid name"):
        pod_party("acme", "a" * 64)
