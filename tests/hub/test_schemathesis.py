"""Schemathesis against the hub's own OpenAPI document: generated requests (valid and
invalid) never make the API fail with a 5xx, and every answer matches the document.

The app runs in-process over the in-memory store with a seeded user, pod, grant and
project; generated path parameters that are valid names are pointed at the seeded records
so that requests reach the handlers' logic instead of stopping at "not found". The schema
is loaded when the module is imported (``schemathesis.pytest.from_fixture`` does not run
under this pytest), so the app is built then too.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from podium.hub.app import create_app
from podium.hub.models import NAME_PATTERN
from podium.hub.registry import PodRegistration
from tests.hub.conftest import PASSWORD, Clock, make_services

#: Seeded records that valid generated path parameters are pointed at.
SEEDED = {"owner": "alice", "name": "census", "project": "study", "user": "bob"}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def seeded_app() -> tuple[FastAPI, dict[str, str]]:
    """The API over a seeded in-memory hub, and Alice's bearer header."""
    # The data folder is never written: the store is in memory and the key is generated.
    # The clock never moves: the token stays valid for the whole run.
    services = make_services(Path(tempfile.gettempdir()) / "podium-schemathesis", Clock())
    now = services.now()
    accounts = services.accounts
    accounts.create_user("alice", PASSWORD, is_admin=False, now=now)
    accounts.create_user("bob", PASSWORD, is_admin=False, now=now)
    alice = accounts.login("alice", PASSWORD, now)
    principal = accounts.authenticate_bearer(alice.access_token, now)
    registration = PodRegistration(display_name="Census", schema={"columns": []})
    services.registry.register_pod(principal, "alice", "census", registration, now)
    services.access.grant(principal, "alice/census", "bob", "sql", now)
    services.access.create_project(principal, "study", "Study", "", now)
    services.access.set_member(principal, "study", "bob", member=True, now=now)
    services.access.set_pod(principal, "study", "alice/census", member=True, now=now)
    return create_app(services, web=False), {"Authorization": f"Bearer {alice.access_token}"}


APP, HEADERS = seeded_app()
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms(case: schemathesis.Case[Any]) -> None:
    """No generated request makes the hub fail, and answers match the OpenAPI document."""
    for key, value in list(case.path_parameters.items()):
        if key in SEEDED and isinstance(value, str) and re.fullmatch(NAME_PATTERN, value):
            case.path_parameters[key] = SEEDED[key]
    case.call_and_validate(headers=HEADERS, checks=CHECKS)
