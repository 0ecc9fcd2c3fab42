"""Fixtures for the web UI's tests: the app with its pages, clients with their own cookie
jars, users, a signed-in alice, and helpers to read pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from podium.hub.accounts import Principal
from podium.hub.app import create_app
from podium.hub.registry import PodRegistration
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD

BASE = "http://hub.test"
ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app(services: HubServices) -> FastAPI:
    """The hub app with its web UI."""
    return create_app(services)


@pytest.fixture
def new_client(app: FastAPI) -> ClientFactory:
    """Makes fresh clients (one per browser, with its own cookies) bound to the app."""

    @asynccontextmanager
    async def make() -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield http

    return make


@pytest.fixture
def users(services: HubServices) -> None:
    """alice owns pods, bob and carol are modellers."""
    for name in ("alice", "bob", "carol"):
        services.accounts.create_user(name, PASSWORD, is_admin=False, now=services.now())


def principal(name: str, *, is_admin: bool = False) -> Principal:
    """A caller for calling the services directly."""
    return Principal(name, is_admin, "token")


def add_pod(
    services: HubServices,
    owner: str,
    name: str,
    *,
    description: str = "",
    schema: dict[str, Any] | None = None,
    records: int | None = 100,
) -> None:
    """Register a pod as its owner."""
    reg = PodRegistration(
        display_name=name.title(), description=description, schema=schema, number_of_records=records
    )
    services.registry.register_pod(principal(owner), owner, name, reg, services.now())


async def sign_in(http: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """Post the login form."""
    return await http.post("/login", data={"username": name, "password": password})


def csrf_of(page: httpx.Response) -> str:
    """The anti-forgery token in a page's forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found is not None, "no csrf field on the page"
    return found.group(1)


def card_status(page: httpx.Response, pod_id: str) -> str:
    """'online' or 'offline', from a pod's card on My Pods."""
    card = re.search(
        rf'<article class="card" data-pod="{re.escape(pod_id)}">.*?</article>', page.text, re.S
    )
    assert card is not None, f"no card for {pod_id}"
    status = re.search(r"status-(online|offline)", card.group(0))
    assert status is not None
    return status.group(1)


@pytest.fixture
async def alice_web(new_client: ClientFactory, users: None) -> AsyncIterator[httpx.AsyncClient]:
    """alice, signed in to the web UI."""
    async with new_client() as http:
        answer = await sign_in(http, "alice")
        assert answer.status_code == 303
        yield http


async def alice_csrf(http: httpx.AsyncClient) -> str:
    """The signed-in user's anti-forgery token."""
    return csrf_of(await http.get("/pods"))
