"""The web UI's pages, in-process: My Pods, a pod's page, grants, projects, the audit
log, device-login approval and the page shell."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from podium.data.schema import ColumnSchema, Schema, SemanticType
from podium.hub.errors import ErrorCode, HubError
from podium.hub.services import HubServices
from podium.hub.web.pages_access import AUDIT_PAGE
from tests.hub.conftest import PASSWORD, Clock
from tests.hub.web.conftest import (
    ClientFactory,
    add_pod,
    alice_csrf,
    card_status,
    csrf_of,
    principal,
    sign_in,
)

# -- My Pods and a pod's page ----------------------------------------------------------


async def test_my_pods_marks_each_pod_online_or_offline(
    alice_web: httpx.AsyncClient, services: HubServices, clock: Clock
) -> None:
    """A card per pod with status-online after a heartbeat, status-offline three missed
    heartbeats later; the page reloads itself."""
    add_pod(services, "alice", "census")
    add_pod(services, "alice", "claims")
    services.registry.heartbeat(principal("alice"), "alice", "census", services.now())
    page = await alice_web.get("/pods")
    assert card_status(page, "alice/census") == "online"
    assert card_status(page, "alice/claims") == "offline"
    assert '<meta http-equiv="refresh" content="5">' in page.text
    clock.advance(services.config.offline_after_s + 1)
    assert card_status(await alice_web.get("/pods"), "alice/census") == "offline"


async def test_my_pods_shows_only_pods_the_user_may_see(
    new_client: ClientFactory, services: HubServices, users: None
) -> None:
    """bob sees alice's pod only once he holds a role on it."""
    add_pod(services, "alice", "census")
    async with new_client() as bob_web:
        await sign_in(bob_web, "bob")
        assert 'data-pod="alice/census"' not in (await bob_web.get("/pods")).text
        services.access.grant(principal("alice"), "alice/census", "bob", "sql", services.now())
        assert 'data-pod="alice/census"' in (await bob_web.get("/pods")).text


def census_schema() -> dict[str, Any]:
    schema = Schema(
        "census",
        description="Adult census income",
        columns=(
            ColumnSchema("age", SemanticType.CONTINUOUS, "integer", description="Age in years"),
            ColumnSchema(
                "workclass", SemanticType.CATEGORICAL, "string", values=("Private", "State-gov")
            ),
        ),
        num_records=32561,
    )
    return schema.to_dict()


async def test_pod_page_shows_description_records_status_and_schema(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The pod page shows the description, record count, status and a row per column
    with its semantic type, logical type and description."""
    add_pod(services, "alice", "census", description="Income survey", schema=census_schema())
    page = await alice_web.get("/pods/alice/census")
    assert page.status_code == 200
    assert "Income survey" in page.text
    assert '<dd class="records">100</dd>' in page.text
    assert "status-offline" in page.text
    rows = re.findall(
        r"<tr>\s*<td><code>(.*?)</code></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", page.text
    )
    assert rows == [("age", "continuous", "integer"), ("workclass", "categorical", "string")]
    assert "Age in years" in page.text
    assert "Values: Private, State-gov" in page.text


async def test_pod_page_says_hidden_when_the_pod_hides_its_size(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """A pod without a record count shows 'hidden'."""
    add_pod(services, "alice", "census", records=None)
    page = await alice_web.get("/pods/alice/census")
    assert '<dd class="records">hidden</dd>' in page.text


async def test_pod_text_is_escaped(alice_web: httpx.AsyncClient, services: HubServices) -> None:
    """A description or column name with markup is shown as text, not run."""
    evil = "<script>alert('x')</script>"
    schema = {"columns": [{"name": "<img src=x onerror=alert(1)>", "stype": "text"}]}
    add_pod(services, "alice", "census", description=evil, schema=schema)
    for path in ("/pods", "/pods/alice/census"):
        page = await alice_web.get(path)
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    page = await alice_web.get("/pods/alice/census")
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


async def test_a_schema_of_unknown_shape_is_shown_as_json(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """A schema the page cannot read as tables is shown as its (escaped) JSON."""
    add_pod(services, "alice", "census", schema={"weird": [1, "<b>"]})
    page = await alice_web.get("/pods/alice/census")
    assert page.status_code == 200
    assert "not in a form this page knows" in page.text
    assert "&#34;&lt;b&gt;&#34;" in page.text


async def test_unknown_or_hidden_pods_are_a_404_page(
    new_client: ClientFactory, services: HubServices, users: None
) -> None:
    """A pod that does not exist, or that the user cannot see, is the same HTML 404."""
    add_pod(services, "alice", "census")
    async with new_client() as bob_web:
        await sign_in(bob_web, "bob")
        for path in ("/pods/alice/census", "/pods/alice/nothing"):
            page = await bob_web.get(path)
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert "No such pod, or you cannot see it." in page.text


async def test_a_malformed_pod_path_is_a_400_page(alice_web: httpx.AsyncClient) -> None:
    """A path that is not a pod identifier is an HTML error page, not problem JSON."""
    page = await alice_web.get("/pods/Alice/Not%20A%20Name")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")


async def test_viewers_see_the_pod_but_not_its_access(
    new_client: ClientFactory, services: HubServices, users: None
) -> None:
    """Someone with a role but not managing the pod sees no grant list or form."""
    add_pod(services, "alice", "census")
    services.access.grant(principal("alice"), "alice/census", "bob", "viewer", services.now())
    async with new_client() as bob_web:
        await sign_in(bob_web, "bob")
        page = await bob_web.get("/pods/alice/census")
    assert page.status_code == 200
    assert 'id="grant-form"' not in page.text
    assert 'id="access"' not in page.text


# -- granting and revoking -------------------------------------------------------------


async def test_grant_and_revoke_through_the_forms(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The owner grants a role with the form, sees it listed and in the audit log, then
    revokes it with the row's button."""
    add_pod(services, "alice", "census")
    page = await alice_web.get("/pods/alice/census")
    assert 'id="grant-form"' in page.text
    token = csrf_of(page)
    answer = await alice_web.post(
        "/pods/alice/census/grants", data={"csrf": token, "user": "bob", "role": "sql"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/pods/alice/census#access"
    assert [(g.user, g.role) for g in services.store.list_grants(pod_id="alice/census")] == [
        ("bob", "sql")
    ]
    page = await alice_web.get("/pods/alice/census")
    assert 'data-grant="bob:sql"' in page.text
    audit = await alice_web.get("/audit")
    assert re.search(r"<td>alice</td>\s*<td>grant</td>", audit.text)

    answer = await alice_web.post(
        "/pods/alice/census/revoke", data={"csrf": token, "user": "bob", "role": "sql"}
    )
    assert answer.status_code == 303
    assert services.store.list_grants(pod_id="alice/census") == []
    assert 'data-grant="bob:sql"' not in (await alice_web.get("/pods/alice/census")).text


async def test_granting_a_preset_gives_each_of_its_roles(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """A preset in the role select grants all its roles."""
    add_pod(services, "alice", "census")
    await alice_web.post(
        "/pods/alice/census/grants",
        data={"csrf": await alice_csrf(alice_web), "user": "bob", "role": "dp-modeller"},
    )
    roles = {g.role for g in services.store.list_grants(pod_id="alice/census", user="bob")}
    assert roles == {"viewer", "private-sql", "statistics"}


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"user": "nobody", "role": "sql"}, 404, "no user &#39;nobody&#39;"),
        ({"user": "bob", "role": "root"}, 422, "is not one of"),
    ],
)
async def test_a_bad_grant_shows_the_reason_on_the_pod_page(
    alice_web: httpx.AsyncClient,
    services: HubServices,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    """An unknown user or role re-shows the pod page with the reason next to the form."""
    add_pod(services, "alice", "census")
    answer = await alice_web.post(
        "/pods/alice/census/grants", data={"csrf": await alice_csrf(alice_web), **fields}
    )
    assert answer.status_code == status
    assert 'class="error"' in answer.text
    assert message in answer.text
    assert 'id="grant-form"' in answer.text
    assert services.store.list_grants(pod_id="alice/census") == []


async def test_only_those_who_manage_a_pod_can_grant(
    new_client: ClientFactory, services: HubServices, users: None
) -> None:
    """A viewer posting the grant form (with a valid token) gets 403 and no grant."""
    add_pod(services, "alice", "census")
    services.access.grant(principal("alice"), "alice/census", "bob", "viewer", services.now())
    async with new_client() as bob_web:
        await sign_in(bob_web, "bob")
        token = csrf_of(await bob_web.get("/pods"))
        answer = await bob_web.post(
            "/pods/alice/census/grants", data={"csrf": token, "user": "bob", "role": "admin"}
        )
    assert answer.status_code == 403
    assert "Only the pod" in answer.text
    assert {g.role for g in services.store.list_grants(pod_id="alice/census")} == {"viewer"}


# -- projects --------------------------------------------------------------------------


async def test_create_a_project_and_add_a_member_and_a_pod(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The project form creates a project; its page adds members and the owner's pods."""
    add_pod(services, "alice", "census")
    token = await alice_csrf(alice_web)
    answer = await alice_web.post(
        "/projects",
        data={"csrf": token, "name": "study", "display_name": "Income study", "description": ""},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/projects/study"
    assert 'data-project="study"' in (await alice_web.get("/projects")).text

    assert (
        await alice_web.post("/projects/study/members", data={"csrf": token, "user": "bob"})
    ).status_code == 303
    assert (
        await alice_web.post("/projects/study/pods", data={"csrf": token, "pod": "alice/census"})
    ).status_code == 303
    page = await alice_web.get("/projects/study")
    assert page.status_code == 200
    assert "Income study" in page.text
    assert "<li>bob</li>" in page.text
    assert '<a href="/pods/alice/census">alice/census</a>' in page.text
    assert services.store.list_project_members("study") == ["bob"]


async def test_a_bad_project_name_is_shown_on_the_form(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """An invalid project name re-shows the projects page with the reason."""
    answer = await alice_web.post(
        "/projects", data={"csrf": await alice_csrf(alice_web), "name": "Bad Name!"}
    )
    assert answer.status_code == 422
    assert "is not a valid project name" in answer.text
    assert services.store.list_projects() == []


async def test_projects_of_others_are_a_404_page(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """A project the user is not in is not shown."""
    services.access.create_project(principal("bob"), "secret", "", "", services.now())
    page = await alice_web.get("/projects/secret")
    assert page.status_code == 404
    assert "No such project" in page.text


# -- the audit log ---------------------------------------------------------------------


async def test_audit_log_pages_back_newest_first(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The audit page lists events newest first, a page at a time, with an Older link."""
    add_pod(services, "alice", "census")
    alice = principal("alice")
    for i in range(AUDIT_PAGE + 5):
        change = services.access.grant if i % 2 == 0 else services.access.revoke
        change(alice, "alice/census", "bob", "sql", services.now())
    first = await alice_web.get("/audit")
    ids = [int(x) for x in re.findall(r'data-event="(\d+)"', first.text)]
    assert len(ids) == AUDIT_PAGE
    assert ids == sorted(ids, reverse=True)
    older = re.search(r'href="/audit\?before=(\d+)"', first.text)
    assert older is not None
    assert int(older.group(1)) == ids[-1]
    second = await alice_web.get(f"/audit?before={older.group(1)}")
    rest = [int(x) for x in re.findall(r'data-event="(\d+)"', second.text)]
    assert len(rest) == 5
    assert max(rest) < ids[-1]
    assert "?before=" not in second.text


async def test_audit_log_hides_other_owners_events(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """alice does not see events on bob's pods that she had no part in."""
    add_pod(services, "bob", "claims")
    services.access.grant(principal("bob"), "bob/claims", "carol", "sql", services.now())
    page = await alice_web.get("/audit")
    assert "bob/claims" not in page.text


# -- device login ----------------------------------------------------------------------


async def test_device_login_is_approved_on_the_page(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """The page shows a pending code with Approve and Deny; Approve lets the CLI's poll
    get tokens for the signed-in user."""
    started = services.accounts.start_device_login("podium-cli", services.now())
    page = await alice_web.get(f"/device?user_code={started.user_code.lower()}")
    assert page.status_code == 200
    assert started.user_code in page.text
    assert 'value="approve"' in page.text
    assert 'value="deny"' in page.text
    answer = await alice_web.post(
        "/device",
        data={"csrf": csrf_of(page), "user_code": started.user_code, "decision": "approve"},
    )
    assert answer.status_code == 200
    assert "Device approved" in answer.text
    pair = services.accounts.poll_device_login(started.device_code, "podium-cli", services.now())
    assert pair.user.name == "alice"


async def test_device_login_can_be_denied(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """Deny makes the CLI's poll fail with access-denied."""
    started = services.accounts.start_device_login("podium-cli", services.now())
    token = await alice_csrf(alice_web)
    answer = await alice_web.post(
        "/device", data={"csrf": token, "user_code": started.user_code, "decision": "deny"}
    )
    assert answer.status_code == 200
    assert "Device denied" in answer.text
    with pytest.raises(HubError) as caught:
        services.accounts.poll_device_login(started.device_code, "podium-cli", services.now())
    assert caught.value.code == ErrorCode.ACCESS_DENIED


async def test_device_page_without_a_code_asks_for_one(alice_web: httpx.AsyncClient) -> None:
    """/device alone shows a form to type the code."""
    page = await alice_web.get("/device")
    assert page.status_code == 200
    assert 'name="user_code"' in page.text
    assert 'value="approve"' not in page.text


async def test_unknown_device_code_says_so(alice_web: httpx.AsyncClient) -> None:
    """A code that is not pending is refused on the page, with no Approve button."""
    page = await alice_web.get("/device?user_code=BCDF-GHJK")
    assert page.status_code == 400
    assert "unknown, already used or expired" in page.text
    assert 'value="approve"' not in page.text


async def test_a_used_device_code_cannot_be_approved_twice(
    alice_web: httpx.AsyncClient, services: HubServices
) -> None:
    """Approving the same code again answers an error page."""
    started = services.accounts.start_device_login("podium-cli", services.now())
    data = {
        "csrf": await alice_csrf(alice_web),
        "user_code": started.user_code,
        "decision": "approve",
    }
    assert (await alice_web.post("/device", data=data)).status_code == 200
    again = await alice_web.post("/device", data=data)
    assert again.status_code == 400
    assert again.headers["content-type"].startswith("text/html")


async def test_device_link_survives_signing_in(
    client: httpx.AsyncClient, services: HubServices, users: None
) -> None:
    """Signed out, the CLI's link goes to the login page and back to the code afterwards."""
    started = services.accounts.start_device_login("podium-cli", services.now())
    link = f"/device?user_code={started.user_code}"
    answer = await client.get(link)
    assert answer.headers["location"] == f"/login?next={quote(link, safe='')}"
    login_page = await client.get(answer.headers["location"])
    assert f'name="next" value="{link}"' in login_page.text
    signed_in = await client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "next": link}
    )
    assert signed_in.headers["location"] == link
    assert started.user_code in (await client.get(link)).text


# -- the page shell --------------------------------------------------------------------


async def test_pages_carry_no_inline_script_or_style(
    alice_web: httpx.AsyncClient, client: httpx.AsyncClient, services: HubServices
) -> None:
    """Pages work under the CSP: no inline scripts or styles, the stylesheet is local."""
    add_pod(services, "alice", "census", schema=census_schema())
    services.access.create_project(principal("alice"), "study", "", "", services.now())
    pages = [await client.get("/login")]
    for path in ("/pods", "/pods/alice/census", "/projects", "/projects/study", "/audit"):
        pages.append(await alice_web.get(path))
    pages.append(await alice_web.get("/device"))
    for page in pages:
        assert page.status_code == 200, page.url
        assert "<script" not in page.text, page.url
        assert "style=" not in page.text, page.url
        assert "<style" not in page.text, page.url
        assert '<link rel="stylesheet" href="/static/podium.css">' in page.text
        # Without it the app's no-referrer policy makes chromium post Origin: null.
        assert '<meta name="referrer" content="same-origin">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


async def test_header_shows_the_user_and_the_navigation(alice_web: httpx.AsyncClient) -> None:
    """The header names the user and links My Pods, Projects, Audit and Log out."""
    page = await alice_web.get("/pods")
    assert '<span class="user-name">alice</span>' in page.text
    for link in ('href="/pods"', 'href="/projects"', 'href="/audit"', 'action="/logout"'):
        assert link in page.text


async def test_the_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    """/static/podium.css is served as CSS and styles the status marks."""
    answer = await client.get("/static/podium.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert ".status-online" in answer.text
    assert ".status-offline" in answer.text


async def test_an_unexpected_error_is_a_plain_500_page(
    alice_web: httpx.AsyncClient, services: HubServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug behind a page answers the internal-error page, with no traceback or detail."""

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(services.registry, "list_pods", broken)
    page = await alice_web.get("/pods")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Internal error" in page.text
    assert "secret internal detail" not in page.text
    assert "Traceback" not in page.text


async def test_an_unparsable_form_body_is_a_400_page(alice_web: httpx.AsyncClient) -> None:
    """A form post whose body cannot be parsed answers an HTML 400, not a crash."""
    answer = await alice_web.post(
        "/projects",
        content=b"x",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
