"""Fixtures for hub tests: services over the in-memory store, a settable clock, the app
mounted in-process, and users with tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from podium.hub.app import create_app
from podium.hub.config import HubConfig, LoginPolicy, PasswordCost
from podium.hub.security import PasswordHasher, TokenSigner
from podium.hub.services import HubServices
from podium.hub.store import InMemoryHubStore

#: Cheap argon2id parameters: the tests check behaviour, not hashing cost.
FAST_PASSWORDS = PasswordCost(time_cost=1, memory_cost_kib=1024, parallelism=1)
PASSWORD = "correct horse battery"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_config(tmp_path: Path, **overrides: object) -> HubConfig:
    """A hub config for tests: fast hashing, a small login policy."""
    settings: dict[str, object] = {
        "data_dir": tmp_path / "hub",
        "password_cost": FAST_PASSWORDS,
        "login": LoginPolicy(throttle_after=3, backoff_base_s=1, lock_after=6, lock_for_s=600),
    }
    settings.update(overrides)
    return HubConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    """A hand-moved clock for the hub's services."""
    return Clock()


def make_services(
    tmp_path: Path, clock: Callable[[], datetime], **overrides: object
) -> HubServices:
    """Hub services over the in-memory store with a fresh signing key; ``overrides`` go
    to :func:`make_config`."""
    config = make_config(tmp_path, **overrides)
    return HubServices(
        config,
        InMemoryHubStore(),
        TokenSigner(Ed25519PrivateKey.generate()),
        PasswordHasher(config.password_cost),
        clock=clock,
    )


@pytest.fixture
def services(tmp_path: Path, clock: Clock) -> HubServices:
    """Hub services over the in-memory store with a fresh signing key."""
    return make_services(tmp_path, clock)


@pytest.fixture
def app(services: HubServices) -> FastAPI:
    """The hub app, API and web UI, over ``services``."""
    return create_app(services, web=False)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
        yield http


@dataclass(frozen=True)
class Account:
    """A user with a live access token."""

    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_account(
    services: HubServices, client: httpx.AsyncClient, name: str, *, is_admin: bool = False
) -> Account:
    """Create a user and log them in through the API."""
    services.accounts.create_user(name, PASSWORD, is_admin=is_admin, now=services.now())
    answer = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": name, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return Account(name, answer.json()["access_token"])


@pytest.fixture
async def alice(services: HubServices, client: httpx.AsyncClient) -> Account:
    """A pod owner."""
    return await make_account(services, client, "alice")


@pytest.fixture
async def bob(services: HubServices, client: httpx.AsyncClient) -> Account:
    """A modeller."""
    return await make_account(services, client, "bob")


@pytest.fixture
async def admin(services: HubServices, client: httpx.AsyncClient) -> Account:
    """A hub administrator."""
    return await make_account(services, client, "root", is_admin=True)
