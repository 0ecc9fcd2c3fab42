"""The web UI in a real browser: Playwright drives Debian's chromium against a hub served
by uvicorn on loopback, with the real clock and fast heartbeats."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from podium.data.schema import ColumnSchema, Schema, SemanticType
from podium.hub.app import create_app
from podium.hub.models import utcnow
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, make_services

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: Heartbeats every half second: a pod shows offline 1.5 s after they stop.
HEARTBEAT_S = 0.5
#: How long the browser waits for a page to show what the test expects, in ms.
WAIT_MS = 8_000


def require_chromium() -> None:
    """Fail under CI=true (the setup must install it), else skip, when chromium is missing."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium with `apt-get install -y chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def live_services(tmp_path: Path) -> HubServices:
    """Hub services on the real clock with fast heartbeats; alice and bob have accounts."""
    services = make_services(tmp_path, utcnow, heartbeat_interval_s=HEARTBEAT_S, web_refresh_s=1)
    for name in ("alice", "bob"):
        services.accounts.create_user(name, PASSWORD, is_admin=False, now=services.now())
    return services


@pytest.fixture
def hub_url(live_services: HubServices) -> Iterator[str]:
    """The hub (API and web UI) served by uvicorn in a thread on a free loopback port."""
    config = uvicorn.Config(
        create_app(live_services),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="hub-server", daemon=True)
    thread.start()
    for _ in range(100):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start within 5 s"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        assert not thread.is_alive(), "uvicorn did not stop within 5 s"


class Heartbeats:
    """A pod's heartbeats, sent from a background thread until stopped."""

    def __init__(self, hub: str, key: str, pod_id: str) -> None:
        self._url = f"{hub}/api/v1/pods/{pod_id}/heartbeat"
        self._headers = {"Authorization": f"Bearer {key}"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeats", daemon=True)
        self.sent = 0

    def _run(self) -> None:
        with httpx.Client(headers=self._headers, timeout=5) as http:
            while not self._stop.is_set():
                http.post(self._url).raise_for_status()
                self.sent += 1
                self._stop.wait(HEARTBEAT_S / 2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()


def register_pod(hub: str, key: str) -> None:
    """alice's pod registers itself through the API with her API key."""
    schema = Schema(
        "census",
        columns=(ColumnSchema("age", SemanticType.CONTINUOUS, "integer"),),
        num_records=3,
    )
    body = {
        "display_name": "Census income",
        "description": "Adult census <b>income</b>",
        "schema": schema.to_dict(),
        "schema_hash": schema.hash,
        "number_of_records": 3,
    }
    answer = httpx.put(
        f"{hub}/api/v1/pods/alice/census",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text


def test_a_pod_goes_online_then_offline_and_a_role_is_granted(
    hub_url: str, live_services: HubServices
) -> None:
    """Sign in; see the pod's card turn green while it heartbeats and red once it stops;
    grant bob `sql` on the pod page and find the grant listed and in the audit log."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 - needs chromium

    _, key = live_services.accounts.create_api_key("alice", "census-pod", live_services.now())
    register_pod(hub_url, key)
    heartbeats = Heartbeats(hub_url, key, "alice/census")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)

            page.goto(f"{hub_url}/pods")
            expect(page).to_have_url(re.compile(r"/login$"))
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(re.compile(r"/pods$"))
            expect(page.locator(".user-name")).to_have_text("alice")

            status = page.locator('[data-pod="alice/census"] .status')
            expect(status).to_have_class(re.compile(r"\bstatus-offline\b"))

            heartbeats.start()
            try:
                expect(status).to_have_class(re.compile(r"\bstatus-online\b"), timeout=WAIT_MS)
                expect(status).to_have_text("online")
            finally:
                heartbeats.stop()
            assert heartbeats.sent > 0
            expect(status).to_have_class(re.compile(r"\bstatus-offline\b"), timeout=WAIT_MS)
            expect(status).to_have_text("offline")

            page.click('[data-pod="alice/census"] h2 a')
            expect(page).to_have_url(re.compile(r"/pods/alice/census$"))
            expect(page.locator(".description")).to_have_text("Adult census <b>income</b>")
            expect(page.locator(".schema td code")).to_have_text("age")
            page.fill("#grant-user", "bob")
            page.select_option("#grant-role", "sql")
            page.click("#grant-form button[type=submit]")
            expect(page.locator('[data-grant="bob:sql"]')).to_be_visible()

            page.click('nav a[href="/audit"]')
            row = page.locator("table.audit tbody tr").first
            expect(row).to_contain_text("grant")
            expect(row).to_contain_text("bob")
            expect(row).to_contain_text("role=sql")
        finally:
            browser.close()

    grants = live_services.store.list_grants(pod_id="alice/census", user="bob")
    assert [g.role for g in grants] == ["sql"]


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_chromium_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    """Without chromium the browser test fails under CI=true (saying how to install it)
    and is skipped otherwise."""
    monkeypatch.setattr(f"{__name__}.CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"apt-get install -y chromium"):
        require_chromium()
