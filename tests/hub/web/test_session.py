"""Web sessions: signing in and out, redirects when signed out, expired and forged
cookies, anti-forgery tokens and same-origin checks on every form."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.hub.app import create_app
from podium.hub.security import TokenSigner
from podium.hub.services import HubServices
from podium.hub.web.session import COOKIE, safe_next
from tests.hub.conftest import PASSWORD, Clock, make_services
from tests.hub.web.conftest import (
    BASE,
    ClientFactory,
    add_pod,
    alice_csrf,
    csrf_of,
    principal,
    sign_in,
)

# -- signing in and out ----------------------------------------------------------------


async def test_login_page_shows_the_form(client: httpx.AsyncClient) -> None:
    """GET /login is an HTML form posting user name and password to /login."""
    page = await client.get("/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/login"' in page.text
    assert 'name="password" type="password"' in page.text


async def test_login_sets_a_strict_httponly_session_cookie(
    client: httpx.AsyncClient, users: None
) -> None:
    """A right password sets podium_session (HttpOnly, SameSite=Strict, Path=/) and goes
    to My Pods."""
    answer = await sign_in(client, "alice")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/pods"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/" in lowered
    assert "secure" not in lowered
    pods = await client.get("/pods")
    assert pods.status_code == 200
    assert "alice" in pods.text


async def test_login_cookie_is_secure_when_the_hub_says_so(tmp_path: Path, clock: Clock) -> None:
    """With secure_cookies the session cookie is marked Secure."""
    services = make_services(tmp_path, clock, secure_cookies=True)
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=clock())
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="https://hub.test") as http:
        answer = await sign_in(http, "alice")
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


async def test_wrong_password_shows_the_form_again_without_a_cookie(
    client: httpx.AsyncClient, users: None
) -> None:
    """A wrong password answers 400 with the reason on the form, and no session."""
    answer = await sign_in(client, "alice", "wrong password")
    assert answer.status_code == 400
    assert "Wrong user name or password." in answer.text
    assert "set-cookie" not in answer.headers
    assert 'value="alice"' in answer.text
    assert (await client.get("/pods")).status_code == 303


async def test_missing_fields_are_a_failed_login_not_a_crash(
    client: httpx.AsyncClient, users: None
) -> None:
    """A post without a password is a failed login page."""
    answer = await client.post("/login", data={"username": "alice"})
    assert answer.status_code == 400
    assert "Wrong user name or password." in answer.text


async def test_repeated_failures_are_throttled_on_the_form(
    client: httpx.AsyncClient, users: None
) -> None:
    """After the policy's failures, the form says to wait (429), even with the right password."""
    for _ in range(3):
        assert (await sign_in(client, "alice", "wrong password")).status_code == 400
    answer = await sign_in(client, "alice")
    assert answer.status_code == 429
    assert "wait before trying again" in answer.text


async def test_login_follows_a_local_next_path(client: httpx.AsyncClient, users: None) -> None:
    """``next`` that is a local path is where the login goes."""
    answer = await client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "next": "/audit?before=5"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/audit?before=5"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test/x",
        "https://evil.test/",
        "/\\evil.test",
        "javascript:alert(1)",
        "evil.test",
        "/ok\r\nSet-Cookie: x=1",
        "",
    ],
)
async def test_login_ignores_a_next_that_leaves_the_hub(
    client: httpx.AsyncClient, users: None, target: str
) -> None:
    """``next`` that is not a local path is ignored: the login goes to My Pods."""
    answer = await client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "next": target}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/pods"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/pods/alice/x", "/pods/alice/x"),
        ("/device?user_code=ABCD-EFGH", "/device?user_code=ABCD-EFGH"),
        ("//evil.test", None),
        ("/\\evil.test", None),
        ("http://evil.test/", None),
        ("/a\tb", None),
        (None, None),
    ],
)
def test_safe_next_accepts_only_local_paths(value: str | None, expected: str | None) -> None:
    """safe_next keeps a path with a single leading slash and nothing else."""
    assert safe_next(value) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.test"},
        {"Origin": "null"},
        {"Referer": "http://evil.test/login"},
        {"Origin": "http://hub.test.evil.test"},
    ],
)
async def test_login_refuses_posts_from_another_site(
    client: httpx.AsyncClient, users: None, headers: dict[str, str]
) -> None:
    """A cross-origin login post (login CSRF) is refused with 403 and sets no cookie."""
    answer = await client.post(
        "/login", data={"username": "alice", "password": PASSWORD}, headers=headers
    )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    assert "another site" in answer.text


async def test_login_accepts_posts_from_its_own_origin(
    client: httpx.AsyncClient, users: None
) -> None:
    """A post whose Origin is the hub itself is accepted."""
    answer = await client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD},
        headers={"Origin": BASE, "Referer": f"{BASE}/login"},
    )
    assert answer.status_code == 303


async def test_logout_ends_the_session(alice_web: httpx.AsyncClient) -> None:
    """POST /logout with the token removes the cookie; pages then ask to sign in."""
    answer = await alice_web.post("/logout", data={"csrf": await alice_csrf(alice_web)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]
    assert COOKIE not in alice_web.cookies
    assert (await alice_web.get("/pods")).headers["location"] == "/login"


async def test_a_logged_out_cookie_stops_working_at_once(alice_web: httpx.AsyncClient) -> None:
    """A copy of the session cookie taken before logging out is refused afterwards."""
    stolen = alice_web.cookies[COOKIE]
    assert (await alice_web.get("/pods")).status_code == 200
    await alice_web.post("/logout", data={"csrf": await alice_csrf(alice_web)})
    alice_web.cookies.set(COOKIE, stolen)
    replay = await alice_web.get("/pods")
    assert replay.status_code == 303
    assert replay.headers["location"] == "/login"


# -- signed out, expired and forged sessions -------------------------------------------


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/pods", "/login"),
        ("/pods/alice/census", "/login?next=%2Fpods%2Falice%2Fcensus"),
        ("/projects", "/login?next=%2Fprojects"),
        ("/projects/study", "/login?next=%2Fprojects%2Fstudy"),
        ("/audit?before=3", "/login?next=%2Faudit%3Fbefore%3D3"),
        ("/device", "/login?next=%2Fdevice"),
    ],
)
async def test_signed_out_pages_redirect_to_login(
    client: httpx.AsyncClient, path: str, location: str
) -> None:
    """Every page needs a session: signed out, it redirects to /login?next=<the page>."""
    answer = await client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"] == location


async def test_root_goes_to_my_pods(client: httpx.AsyncClient) -> None:
    """GET / redirects to /pods."""
    answer = await client.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/pods"


@pytest.mark.parametrize("path", ["/logout", "/pods/alice/census/grants", "/projects", "/device"])
async def test_signed_out_posts_redirect_to_login(client: httpx.AsyncClient, path: str) -> None:
    """A form post without a session changes nothing and asks to sign in."""
    answer = await client.post(path, data={"csrf": "0" * 64, "user": "bob", "role": "sql"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


async def test_expired_session_asks_to_sign_in_again(
    alice_web: httpx.AsyncClient, services: HubServices, clock: Clock
) -> None:
    """After web_session_ttl_s the cookie no longer works, and is cleared."""
    assert (await alice_web.get("/pods")).status_code == 200
    clock.advance(services.config.web_session_ttl_s + 1)
    answer = await alice_web.get("/pods")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert COOKIE not in alice_web.cookies


async def test_forged_session_cookie_is_refused(
    client: httpx.AsyncClient, services: HubServices, users: None
) -> None:
    """A session token signed by another key does not sign anyone in."""
    other = TokenSigner(Ed25519PrivateKey.generate())
    forged, _ = other.issue("alice", is_admin=True, token_type="web", now=services.now(), ttl_s=60)
    client.cookies.set(COOKIE, forged)
    assert (await client.get("/pods")).status_code == 303


async def test_an_api_access_token_is_not_a_session(
    client: httpx.AsyncClient, services: HubServices, users: None
) -> None:
    """An API access token put in the cookie does not sign in (wrong token type)."""
    pair = services.accounts.login("alice", PASSWORD, services.now())
    client.cookies.set(COOKIE, pair.access_token)
    assert (await client.get("/pods")).status_code == 303


# -- anti-forgery tokens ---------------------------------------------------------------

FORMS: list[tuple[str, dict[str, str]]] = [
    ("/logout", {}),
    ("/pods/alice/census/grants", {"user": "bob", "role": "sql"}),
    ("/pods/alice/census/revoke", {"user": "bob", "role": "viewer"}),
    ("/projects", {"name": "study"}),
    ("/projects/existing/members", {"user": "bob"}),
    ("/projects/existing/pods", {"pod": "alice/census"}),
    ("/device", {"user_code": "BCDF-GHJK", "decision": "approve"}),
]


@pytest.mark.parametrize(("path", "fields"), FORMS)
@pytest.mark.parametrize("token", [None, "", "deadbeef", "0" * 64])
async def test_every_form_needs_the_sessions_csrf_token(
    alice_web: httpx.AsyncClient,
    services: HubServices,
    path: str,
    fields: dict[str, str],
    token: str | None,
) -> None:
    """A form post with a missing or wrong csrf field is refused with 403 and changes
    nothing."""
    add_pod(services, "alice", "census")
    services.access.grant(principal("alice"), "alice/census", "bob", "viewer", services.now())
    services.access.create_project(principal("alice"), "existing", "", "", services.now())
    audit_before = len(services.store.list_audit(limit=1000))
    data = dict(fields) if token is None else {**fields, "csrf": token}
    answer = await alice_web.post(path, data=data)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert len(services.store.list_audit(limit=1000)) == audit_before
    assert (await alice_web.get("/pods")).status_code == 200  # still signed in


async def test_a_csrf_token_of_another_session_is_refused(
    alice_web: httpx.AsyncClient, new_client: ClientFactory, services: HubServices
) -> None:
    """Tokens are bound to a session: bob's token does not work in alice's session."""
    add_pod(services, "alice", "census")
    async with new_client() as bob_web:
        await sign_in(bob_web, "bob")
        bob_token = csrf_of(await bob_web.get("/pods"))
    answer = await alice_web.post(
        "/pods/alice/census/grants", data={"csrf": bob_token, "user": "bob", "role": "sql"}
    )
    assert answer.status_code == 403
    assert services.store.list_grants(pod_id="alice/census") == []


async def test_form_posts_from_another_site_are_refused_even_with_a_token(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """A signed-in form post whose Origin is another site is refused."""
    add_pod(services, "alice", "census")
    answer = await alice_web.post(
        "/pods/alice/census/grants",
        data={"csrf": await alice_csrf(alice_web), "user": "bob", "role": "sql"},
        headers={"Origin": "http://evil.test"},
    )
    assert answer.status_code == 403
    assert services.store.list_grants(pod_id="alice/census") == []
