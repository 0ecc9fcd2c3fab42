"""Regression tests from the hub's security review, web UI side: the session cookie behind
HTTPS, the cost of showing a schema of unknown shape, and log lines from request paths."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.hub.app import create_app
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, Clock, make_services
from tests.hub.web.conftest import add_pod, alice_csrf, sign_in


@pytest.mark.parametrize("public_url", ["https://hub.example.org", "HTTPS://hub.example.org"])
async def test_session_cookie_is_secure_behind_an_https_public_url(
    tmp_path: Path, clock: Clock, public_url: str
) -> None:
    """A hub that users reach over HTTPS marks its session cookie Secure, so a plain-HTTP
    request to the same host never carries it."""
    services = make_services(tmp_path, clock, public_url=public_url)
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=clock())
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="https://hub.example.org") as http:
        answer = await sign_in(http, "alice")
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


class _CountingList(list[Any]):
    """A list that counts how many of its items were read."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self.served = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self.served += 1
            yield item


async def test_a_huge_schema_of_unknown_shape_is_encoded_only_as_far_as_shown(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The pod page shows the start of a schema it cannot read as tables, without
    indenting all of it first (a nested schema would blow up to gigabytes)."""
    deep: list[Any] = []
    for _ in range(10):
        deep = [deep]
    rows = _CountingList([deep] * 20_000)
    add_pod(services, "alice", "census", schema={"rows": rows})
    page = await alice_web.get("/pods/alice/census")
    assert page.status_code == 200
    assert "<pre>" in page.text
    assert rows.served < 1_000


async def test_request_paths_are_logged_escaped(
    alice_web: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A path holding control characters (a terminal escape, say) is logged escaped, so
    reading the log cannot replay them."""
    token = await alice_csrf(alice_web)
    with caplog.at_level(logging.DEBUG, logger="podium.hub"):
        await alice_web.post(
            "/pods/x%1B%5B2J%07/y/grants",
            data={"csrf": token, "user": "bob", "role": "sql"},
            headers={"Origin": "http://evil.test"},
        )
        await alice_web.post("/pods/x%1B%5D0%3Bt%07/y/grants", data={"user": "bob", "role": "sql"})
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("podium.hub")]
    assert len(logged) >= 2, "the refused posts were not logged"
    assert not any("\x1b" in message or "\x07" in message for message in logged)
