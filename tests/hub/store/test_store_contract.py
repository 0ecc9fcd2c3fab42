"""The hub store's contract: every test runs on the in-memory store, SQLite and PostgreSQL.

The in-memory store is the reference; the SQL store must behave the same, down to sort
orders, no-op results and when audit events are written.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from podium.hub.models import (
    ApiKey,
    DeviceCode,
    DeviceCodeStatus,
    Grant,
    KeyPurpose,
    LoginFailures,
    Pod,
    Project,
    ProjectTask,
    PublicKey,
    RefreshToken,
    UsageLimit,
    User,
)
from podium.hub.store import AlreadyExistsError, HubStore, NewAuditEvent, PodQuery, SqlHubStore
from podium.hub.store.engine import create_hub_engine
from podium.hub.store.migrate import upgrade_to_head
from tests.hub.store.conftest import T0, at, audit

# -- helpers ---------------------------------------------------------------------------


def make_pod(owner: str, name: str, **fields: Any) -> Pod:
    """A pod with fixed times."""
    values: dict[str, Any] = {"display_name": name.title(), "created_at": T0, "updated_at": T0}
    values.update(fields)
    return Pod(owner=owner, name=name, **values)


def pod_ids(pods: list[Pod]) -> list[str]:
    """The identifiers of ``pods``, in order."""
    return [p.pod_id for p in pods]


def actions(store: HubStore) -> list[str]:
    """Audit actions, oldest first."""
    return [e.action for e in reversed(store.list_audit(limit=1000))]


def race(call: Callable[[], bool], times: int = 8) -> list[bool]:
    """Run ``call`` from ``times`` threads at once; the results."""
    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(lambda _: call(), range(times)))


# -- users -----------------------------------------------------------------------------


def test_user_round_trips(store: HubStore) -> None:
    """A created user reads back field for field, with an aware UTC time."""
    user = User("alice", "$argon2id$v=19$x", is_admin=True, created_at=T0, disabled=True)
    store.create_user(user)
    got = store.get_user("alice")
    assert got == user
    assert got is not None
    assert got.created_at.utcoffset() == timedelta(0)


def test_duplicate_user_is_refused_and_keeps_the_first(store: HubStore) -> None:
    """Creating a taken user name raises AlreadyExistsError and changes nothing."""
    store.create_user(User("alice", "first", created_at=T0))
    with pytest.raises(AlreadyExistsError):
        store.create_user(User("alice", "second", created_at=T0))
    got = store.get_user("alice")
    assert got is not None
    assert got.password_hash == "first"


def test_absent_user_is_none(store: HubStore) -> None:
    """An unknown user name gives None."""
    assert store.get_user("nobody") is None


def test_users_are_listed_by_name_in_code_point_order(store: HubStore) -> None:
    """Users come back sorted by name as Python sorts strings."""
    names = ["ab", "a_b", "b", "a-b", "a0", "a"]
    for name in names:
        store.create_user(User(name, "h", created_at=T0))
    assert [u.name for u in store.list_users()] == sorted(names)


def test_update_user_replaces_the_record(store: HubStore) -> None:
    """update_user replaces hash, admin flag and disabled flag."""
    store.create_user(User("alice", "old", created_at=T0))
    changed = User("alice", "new", is_admin=True, created_at=T0, disabled=True)
    assert store.update_user(changed) is True
    assert store.get_user("alice") == changed


def test_update_of_absent_user_is_false_and_creates_nothing(store: HubStore) -> None:
    """update_user on an unknown name is False and does not create the user."""
    assert store.update_user(User("ghost", "h", created_at=T0)) is False
    assert store.get_user("ghost") is None


# -- failed logins ---------------------------------------------------------------------


def test_login_failures_insert_replace_and_clear(store: HubStore) -> None:
    """put stores or replaces the count of one name; clear forgets it."""
    assert store.get_login_failures("alice") is None
    first = LoginFailures("alice", 1, at(0))
    store.put_login_failures(first)
    assert store.get_login_failures("alice") == first
    second = LoginFailures("alice", 6, at(5), locked_until=at(600))
    store.put_login_failures(second)
    store.put_login_failures(LoginFailures("bob", 2, at(1)))
    assert store.get_login_failures("alice") == second
    store.clear_login_failures("alice")
    store.clear_login_failures("never-failed")
    assert store.get_login_failures("alice") is None
    assert store.get_login_failures("bob") == LoginFailures("bob", 2, at(1))


# -- API keys --------------------------------------------------------------------------


def test_api_key_round_trips_and_duplicates_are_refused(store: HubStore) -> None:
    """A stored key reads back; a second key with the same id is refused."""
    key = ApiKey("k1", "alice", "laptop", "sha256hash", created_at=T0)
    store.add_api_key(key)
    assert store.get_api_key("k1") == key
    with pytest.raises(AlreadyExistsError):
        store.add_api_key(ApiKey("k1", "bob", "other", "x", created_at=T0))
    assert store.get_api_key("k1") == key
    assert store.get_api_key("k2") is None


def test_api_keys_are_listed_oldest_first_with_revoked(store: HubStore) -> None:
    """list_api_keys gives one owner's keys by age (then id), revoked ones too."""
    store.add_api_key(ApiKey("k3", "alice", "c", "h", created_at=at(2)))
    store.add_api_key(ApiKey("k2", "alice", "b", "h", created_at=at(1)))
    store.add_api_key(ApiKey("k1", "alice", "a", "h", created_at=at(1)))
    store.add_api_key(ApiKey("k9", "bob", "z", "h", created_at=at(0)))
    store.revoke_api_key("k3", at(10))
    assert [k.key_id for k in store.list_api_keys("alice")] == ["k1", "k2", "k3"]
    assert store.list_api_keys("nobody") == []


def test_api_key_is_revoked_once(store: HubStore) -> None:
    """revoke_api_key is True once, False again and for unknown keys."""
    store.add_api_key(ApiKey("k1", "alice", "a", "h", created_at=T0))
    assert store.revoke_api_key("k1", at(1)) is True
    assert store.revoke_api_key("k1", at(2)) is False
    assert store.revoke_api_key("absent", at(2)) is False
    got = store.get_api_key("k1")
    assert got is not None
    assert got.revoked_at == at(1)


def test_touch_api_key_records_last_use(store: HubStore) -> None:
    """touch_api_key sets last_used_at; touching an unknown key does nothing."""
    store.add_api_key(ApiKey("k1", "alice", "a", "h", created_at=T0))
    store.touch_api_key("k1", at(30))
    store.touch_api_key("absent", at(30))
    got = store.get_api_key("k1")
    assert got is not None
    assert got.last_used_at == at(30)
    assert store.get_api_key("absent") is None


# -- refresh tokens --------------------------------------------------------------------


def test_refresh_token_round_trips_and_duplicates_are_refused(store: HubStore) -> None:
    """A stored token reads back by hash; the same hash twice is refused."""
    token = RefreshToken("t1", "alice", expires_at=at(3600), created_at=T0)
    store.add_refresh_token(token)
    assert store.get_refresh_token("t1") == token
    assert store.get_refresh_token("t2") is None
    with pytest.raises(AlreadyExistsError):
        store.add_refresh_token(RefreshToken("t1", "bob", expires_at=at(1), created_at=T0))


def test_refresh_token_is_revoked_once(store: HubStore) -> None:
    """revoke_refresh_token is True for the first call only."""
    store.add_refresh_token(RefreshToken("t1", "alice", expires_at=at(60), created_at=T0))
    assert store.revoke_refresh_token("t1", at(1)) is True
    assert store.revoke_refresh_token("t1", at(2)) is False
    assert store.revoke_refresh_token("absent", at(2)) is False
    got = store.get_refresh_token("t1")
    assert got is not None
    assert got.revoked_at == at(1)


def test_concurrent_revocations_of_one_token_have_one_winner(store: HubStore) -> None:
    """Of many simultaneous uses of one refresh token, exactly one revokes it."""
    store.add_refresh_token(RefreshToken("t1", "alice", expires_at=at(60), created_at=T0))
    assert sorted(race(lambda: store.revoke_refresh_token("t1", at(1)))) == [False] * 7 + [True]


def test_revoke_refresh_tokens_of_counts_live_tokens_of_one_owner(store: HubStore) -> None:
    """revoke_refresh_tokens_of revokes the owner's live tokens and says how many."""
    for token_hash, owner in [("a1", "alice"), ("a2", "alice"), ("a3", "alice"), ("b1", "bob")]:
        store.add_refresh_token(RefreshToken(token_hash, owner, expires_at=at(60), created_at=T0))
    store.revoke_refresh_token("a1", at(1))
    assert store.revoke_refresh_tokens_of("alice", at(2)) == 2
    assert store.revoke_refresh_tokens_of("alice", at(3)) == 0
    a1, a2, b1 = (store.get_refresh_token(h) for h in ("a1", "a2", "b1"))
    assert a1 is not None
    assert a1.revoked_at == at(1)
    assert a2 is not None
    assert a2.revoked_at == at(2)
    assert b1 is not None
    assert b1.revoked_at is None


# -- device authorization --------------------------------------------------------------


def make_device(device_hash: str = "d1", user_code: str = "ABCD-EFGH") -> DeviceCode:
    """A pending device authorization."""
    return DeviceCode(device_hash, user_code, "podium-cli", at(600), 5, created_at=T0)


def test_device_code_is_found_by_hash_and_user_code(store: HubStore) -> None:
    """A device authorization reads back by device-code hash and by user code."""
    code = make_device()
    store.add_device_code(code)
    assert store.get_device_code("d1") == code
    assert store.get_device_code_by_user_code("ABCD-EFGH") == code
    got = store.get_device_code("d1")
    assert got is not None
    assert type(got.status) is DeviceCodeStatus
    assert store.get_device_code("absent") is None
    assert store.get_device_code_by_user_code("ZZZZ-ZZZZ") is None


def test_device_code_duplicates_are_refused(store: HubStore) -> None:
    """A user code or a device-code hash already in use is refused."""
    store.add_device_code(make_device("d1", "ABCD-EFGH"))
    with pytest.raises(AlreadyExistsError):
        store.add_device_code(make_device("d2", "ABCD-EFGH"))
    with pytest.raises(AlreadyExistsError):
        store.add_device_code(make_device("d1", "WXYZ-WXYZ"))
    assert store.get_device_code("d2") is None
    assert store.get_device_code_by_user_code("WXYZ-WXYZ") is None


def test_device_code_moves_only_from_the_expected_state(store: HubStore) -> None:
    """transition_device_code moves pending to approved once, setting the user."""
    store.add_device_code(make_device())
    pending, approved = DeviceCodeStatus.PENDING, DeviceCodeStatus.APPROVED
    assert store.transition_device_code("d1", pending, approved, user="alice") is True
    assert store.transition_device_code("d1", pending, DeviceCodeStatus.DENIED) is False
    got = store.get_device_code("d1")
    assert got is not None
    assert (got.status, got.user) == (approved, "alice")
    assert store.transition_device_code("absent", pending, approved) is False


def test_device_code_transition_without_user_keeps_the_user(store: HubStore) -> None:
    """A transition that names no user leaves the approving user in place."""
    store.add_device_code(make_device())
    store.transition_device_code(
        "d1", DeviceCodeStatus.PENDING, DeviceCodeStatus.APPROVED, user="alice"
    )
    assert store.transition_device_code("d1", DeviceCodeStatus.APPROVED, DeviceCodeStatus.USED)
    got = store.get_device_code("d1")
    assert got is not None
    assert (got.status, got.user) == (DeviceCodeStatus.USED, "alice")


def test_concurrent_device_code_approvals_have_one_winner(store: HubStore) -> None:
    """Of many simultaneous pending-to-used moves, exactly one succeeds."""
    store.add_device_code(make_device())
    results = race(
        lambda: store.transition_device_code("d1", DeviceCodeStatus.PENDING, DeviceCodeStatus.USED)
    )
    assert sorted(results) == [False] * 7 + [True]


def test_device_code_poll_is_recorded(store: HubStore) -> None:
    """mark_device_code_polled sets last_polled_at; unknown codes are ignored."""
    store.add_device_code(make_device())
    store.mark_device_code_polled("d1", at(7))
    store.mark_device_code_polled("absent", at(7))
    got = store.get_device_code("d1")
    assert got is not None
    assert got.last_polled_at == at(7)
    assert store.get_device_code("absent") is None


# -- public keys -----------------------------------------------------------------------


def make_key(key_id: str, owner: str = "alice", seconds: float = 0, **fields: Any) -> PublicKey:
    """A signing key registered ``seconds`` after T0."""
    purpose = fields.pop("purpose", KeyPurpose.SIGNING)
    return PublicKey(key_id, owner, purpose, f"pk-{key_id}", created_at=at(seconds), **fields)


def test_public_key_round_trips_and_duplicates_are_refused(store: HubStore) -> None:
    """A registered key reads back with its purpose; its id cannot be registered twice."""
    key = make_key("k1", owner="alice/census", purpose=KeyPurpose.ENCRYPTION)
    store.add_public_key(key)
    got = store.get_public_key("k1")
    assert got == key
    assert got is not None
    assert type(got.purpose) is KeyPurpose
    with pytest.raises(AlreadyExistsError):
        store.add_public_key(make_key("k1", owner="bob"))
    assert store.get_public_key("k2") is None


def test_public_keys_are_listed_newest_first_and_filtered(store: HubStore) -> None:
    """list_public_keys: one owner, newest first, by purpose, revoked only on request."""
    store.add_public_key(make_key("k1", seconds=1))
    store.add_public_key(make_key("k2", seconds=2))
    store.add_public_key(make_key("k3", seconds=3, purpose=KeyPurpose.ENCRYPTION))
    store.add_public_key(make_key("k0", seconds=2))
    store.add_public_key(make_key("kb", owner="bob", seconds=9))
    store.revoke_public_key("k1", at(10))
    ids = [k.key_id for k in store.list_public_keys("alice")]
    assert ids == ["k3", "k2", "k0"]
    signing = store.list_public_keys("alice", purpose=KeyPurpose.SIGNING, include_revoked=True)
    assert [k.key_id for k in signing] == ["k2", "k0", "k1"]


def test_public_key_is_revoked_once(store: HubStore) -> None:
    """revoke_public_key is True once, then False; False for unknown keys."""
    store.add_public_key(make_key("k1"))
    assert store.revoke_public_key("k1", at(5)) is True
    assert store.revoke_public_key("k1", at(6)) is False
    assert store.revoke_public_key("absent", at(6)) is False
    got = store.get_public_key("k1")
    assert got is not None
    assert got.revoked_at == at(5)


# -- pods ------------------------------------------------------------------------------


def test_pod_round_trips_with_its_schema(store: HubStore) -> None:
    """A saved pod reads back field for field, its JSON schema as a dict."""
    schema = {
        "columns": [{"name": "âge", "stype": "continuous", "range": [0, 99.5]}],
        "nested": {"flag": True, "none": None, "big": 2**53},
        "text": "with \"quotes\" and 'apostrophes'",
    }
    pod = make_pod(
        "alice",
        "census",
        description="Census income",
        schema=schema,
        schema_hash="abc123",
        number_of_records=2**40,
        last_heartbeat_at=at(5),
    )
    store.save_pod(pod)
    got = store.get_pod("alice", "census")
    assert got == pod
    assert got is not None
    assert got.schema == schema


def test_save_pod_replaces_every_field(store: HubStore) -> None:
    """Saving a pod again replaces every field of the stored one."""
    store.save_pod(make_pod("alice", "census", number_of_records=10, schema={"a": 1}))
    updated = make_pod(
        "alice",
        "census",
        display_name="New",
        description="d",
        schema={},
        schema_hash="h2",
        number_of_records=None,
        updated_at=at(9),
        last_heartbeat_at=at(8),
        archived=True,
    )
    store.save_pod(updated)
    assert store.get_pod("alice", "census") == updated
    assert len(store.list_pods(PodQuery(include_archived=True))) == 1


def test_absent_pod_is_none_and_archived_pod_is_found(store: HubStore) -> None:
    """get_pod returns archived pods and None for unknown ones."""
    store.save_pod(make_pod("alice", "old", archived=True))
    assert store.get_pod("alice", "nothing") is None
    got = store.get_pod("alice", "old")
    assert got is not None
    assert got.archived is True


def test_heartbeat_is_recorded_for_live_pods_only(store: HubStore) -> None:
    """record_heartbeat sets the time on a live pod; False for unknown or archived pods."""
    store.save_pod(make_pod("alice", "census"))
    store.save_pod(make_pod("alice", "old", archived=True))
    assert store.record_heartbeat("alice", "census", at(10)) is True
    assert store.record_heartbeat("alice", "old", at(10)) is False
    assert store.record_heartbeat("alice", "absent", at(10)) is False
    live, old = store.get_pod("alice", "census"), store.get_pod("alice", "old")
    assert live is not None
    assert live.last_heartbeat_at == at(10)
    assert old is not None
    assert old.last_heartbeat_at is None


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ("none", True),
        ("wrong-secret", False),
        ("revoked-key", False),
        ("key-of-another-user", False),
        ("disabled-owner", False),
        ("unknown-key", False),
        ("archived-pod", False),
        ("another-owners-pod", False),
    ],
)
def test_heartbeat_with_api_key_checks_key_owner_and_pod_at_once(
    store: HubStore, change: str, accepted: bool
) -> None:
    """The fast path records a heartbeat only for a live key of a live owner on their pod."""
    store.create_user(User("alice", "h", created_at=T0, disabled=change == "disabled-owner"))
    store.create_user(User("bob", "h", created_at=T0))
    store.add_api_key(ApiKey("k1", "alice", "pod", "secret-hash", created_at=T0))
    store.add_api_key(ApiKey("k2", "bob", "pod", "bob-hash", created_at=T0))
    store.save_pod(make_pod("alice", "census", archived=change == "archived-pod"))
    store.save_pod(make_pod("bob", "other"))
    if change == "revoked-key":
        store.revoke_api_key("k1", at(1))
    owner, name, key_id, secret = "alice", "census", "k1", "secret-hash"
    if change == "wrong-secret":
        secret = "guess"
    elif change == "key-of-another-user":
        key_id, secret = "k2", "bob-hash"
    elif change == "unknown-key":
        key_id = "nope"
    elif change == "another-owners-pod":
        owner, name = "bob", "other"
    assert store.record_heartbeat_with_api_key(owner, name, key_id, secret, at(5)) is accepted
    pod = store.get_pod(owner, name)
    assert pod is not None
    assert pod.last_heartbeat_at == (at(5) if accepted else None)


def test_ended_web_sessions_are_remembered_until_they_expire(store: HubStore) -> None:
    """A revoked session reads back as revoked; purging forgets it only once it expired."""
    assert store.is_session_revoked("s1") is False
    store.revoke_session("s1", at(100))
    store.revoke_session("s1", at(100))  # twice is harmless
    store.revoke_session("s2", at(5000))
    assert store.is_session_revoked("s1") is True
    assert store.purge_expired(at(1000), failures_older_than=at(0)) == 1
    assert store.is_session_revoked("s1") is False
    assert store.is_session_revoked("s2") is True


def test_purge_removes_expired_codes_tokens_and_stale_failures_only(store: HubStore) -> None:
    """Expired device codes and refresh tokens and old unlocked failures go; the rest stay."""
    store.add_device_code(make_device("old", "AAAA-AAAA"))  # expires at(600)
    store.add_device_code(DeviceCode("new", "BBBB-BBBB", "podium-cli", at(2000), 5, created_at=T0))
    store.add_refresh_token(RefreshToken("r-old", "alice", at(600), created_at=T0))
    store.add_refresh_token(RefreshToken("r-new", "alice", at(2000), created_at=T0))
    store.put_login_failures(LoginFailures("stale", 2, at(0)))
    store.put_login_failures(LoginFailures("locked", 10, at(0), locked_until=at(5000)))
    store.put_login_failures(LoginFailures("recent", 1, at(900)))
    removed = store.purge_expired(at(1000), failures_older_than=at(500))
    assert removed == 3
    assert store.get_device_code("old") is None
    assert store.get_device_code("new") is not None
    assert store.get_refresh_token("r-old") is None
    assert store.get_refresh_token("r-new") is not None
    assert store.get_login_failures("stale") is None
    assert store.get_login_failures("locked") is not None
    assert store.get_login_failures("recent") is not None
    assert store.purge_expired(at(1000), failures_older_than=at(500)) == 0


def test_pods_are_listed_by_identifier_in_code_point_order(store: HubStore) -> None:
    """Pods come back sorted by ``owner/name`` as Python sorts those strings."""
    for owner, name in [("a", "x"), ("a-b", "x"), ("a", "y-z"), ("a", "y"), ("a0", "a")]:
        store.save_pod(make_pod(owner, name))
    assert pod_ids(store.list_pods(PodQuery())) == ["a-b/x", "a/x", "a/y", "a/y-z", "a0/a"]


def test_archived_pods_are_listed_only_on_request(store: HubStore) -> None:
    """Archived pods are hidden unless include_archived is set."""
    store.save_pod(make_pod("alice", "live"))
    store.save_pod(make_pod("alice", "old", archived=True))
    assert pod_ids(store.list_pods(PodQuery())) == ["alice/live"]
    listed = store.list_pods(PodQuery(include_archived=True))
    assert pod_ids(listed) == ["alice/live", "alice/old"]


def test_pod_visibility_follows_ownership_and_grants(store: HubStore) -> None:
    """Owners see their pods, grantees the granted ones, others none, admins (None) all."""
    store.save_pod(make_pod("alice", "census"))
    store.save_pod(make_pod("alice", "private"))
    store.save_pod(make_pod("carol", "trials"))
    store.add_grant(Grant("alice/census", "bob", "sql", "alice", created_at=T0), audit("g"))
    store.add_grant(Grant("alice/census", "bob", "viewer", "alice", created_at=T0), audit("g"))

    def visible(user: str | None, **fields: Any) -> list[str]:
        return pod_ids(store.list_pods(PodQuery(visible_to=user, **fields)))

    assert visible("alice") == ["alice/census", "alice/private"]
    assert visible("bob") == ["alice/census"]
    assert visible("mallory") == []
    assert visible(None) == ["alice/census", "alice/private", "carol/trials"]
    assert visible(None, owner="carol") == ["carol/trials"]
    assert visible("bob", owner="carol") == []


def test_pod_search_is_case_insensitive_on_id_name_and_description(store: HubStore) -> None:
    """Text matches the identifier, display name or description, ignoring case."""
    store.save_pod(make_pod("alice", "census", display_name="Income"))
    store.save_pod(make_pod("bob", "x", display_name="Hospital CENSUS"))
    store.save_pod(make_pod("carol", "y", description="About the census of 1994"))
    store.save_pod(make_pod("dave", "z", display_name="Zürich Trials"))
    assert pod_ids(store.list_pods(PodQuery(text="Census"))) == ["alice/census", "bob/x", "carol/y"]
    assert pod_ids(store.list_pods(PodQuery(text="ALICE/CEN"))) == ["alice/census"]
    assert pod_ids(store.list_pods(PodQuery(text="ZÜRICH"))) == ["dave/z"]
    assert store.list_pods(PodQuery(text="absent")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%", ["a/pct", "a/slash"]),
        ("100%", ["a/pct"]),
        ("_", ["a/sql", "a/under"]),
        ("a_b", ["a/under"]),
        ("\\", ["a/slash"]),
        ("\\%", ["a/slash"]),
        ("[a-z]", ["a/bracket"]),
        ("'; DROP TABLE hub_pods; --", ["a/sql"]),
    ],
)
def test_pod_search_text_is_plain_text_not_a_pattern(
    store: HubStore, text: str, expected: list[str]
) -> None:
    """``%``, ``_``, ``\\`` and SQL in the search text match themselves only."""
    store.save_pod(make_pod("a", "pct", display_name="Up 100% of rows"))
    store.save_pod(make_pod("a", "under", display_name="Column a_b"))
    store.save_pod(make_pod("a", "slash", display_name="C:\\% path"))
    store.save_pod(make_pod("a", "bracket", display_name="Regex [a-z]"))
    store.save_pod(make_pod("a", "sql", description="Name: '; DROP TABLE hub_pods; --"))
    store.save_pod(make_pod("a", "plain", display_name="Column aXb at 1000 rows"))
    assert pod_ids(store.list_pods(PodQuery(text=text))) == expected
    assert len(store.list_pods(PodQuery())) == 6


def test_sql_looking_strings_are_stored_as_data(store: HubStore) -> None:
    """A display name that looks like SQL is stored and read back unchanged."""
    evil = "x'); DELETE FROM hub_pods; --"
    store.save_pod(make_pod("alice", "evil", display_name=evil, description='"; --'))
    store.save_pod(make_pod("alice", "census"))
    got = store.get_pod("alice", "evil")
    assert got is not None
    assert (got.display_name, got.description) == (evil, '"; --')
    assert pod_ids(store.list_pods(PodQuery())) == ["alice/census", "alice/evil"]


def test_pods_are_paged_with_limit_and_offset(store: HubStore) -> None:
    """limit and offset page through the sorted list."""
    for name in ["e", "d", "c", "b", "a"]:
        store.save_pod(make_pod("alice", name))
    assert pod_ids(store.list_pods(PodQuery(limit=2))) == ["alice/a", "alice/b"]
    assert pod_ids(store.list_pods(PodQuery(limit=2, offset=2))) == ["alice/c", "alice/d"]
    assert pod_ids(store.list_pods(PodQuery(limit=2, offset=4))) == ["alice/e"]
    assert store.list_pods(PodQuery(offset=5)) == []


# -- grants and limits -----------------------------------------------------------------


def test_grant_is_added_once_with_one_audit_event(store: HubStore) -> None:
    """add_grant is True and audited once; the same grant again is False and not audited."""
    grant = Grant("alice/census", "bob", "sql", "alice", created_at=T0)
    assert store.add_grant(grant, audit("grant.add", pod_id="alice/census")) is True
    assert store.add_grant(grant, audit("grant.again", pod_id="alice/census")) is False
    assert store.list_grants() == [grant]
    assert actions(store) == ["grant.add"]
    (event,) = store.list_audit()
    assert (event.pod_id, event.actor) == ("alice/census", "alice")


def test_grant_is_removed_once_with_one_audit_event(store: HubStore) -> None:
    """remove_grant is True and audited once; removing again is False and not audited."""
    store.add_grant(Grant("alice/census", "bob", "sql", "alice", created_at=T0), audit("add"))
    assert store.remove_grant("alice/census", "bob", "sql", audit("remove")) is True
    assert store.remove_grant("alice/census", "bob", "sql", audit("remove.again")) is False
    assert store.remove_grant("alice/census", "bob", "other", audit("remove.other")) is False
    assert store.list_grants() == []
    assert actions(store) == ["add", "remove"]


def test_concurrent_identical_grants_are_added_and_audited_once(store: HubStore) -> None:
    """Of many simultaneous identical grants, one is added and one event written."""
    grant = Grant("alice/census", "bob", "sql", "alice", created_at=T0)
    assert sorted(race(lambda: store.add_grant(grant, audit("grant")))) == [False] * 7 + [True]
    assert actions(store) == ["grant"]


def test_grants_are_listed_by_pod_user_and_role_and_filtered(store: HubStore) -> None:
    """list_grants sorts by pod, user, role and filters by pod and/or user."""
    for pod_id, user, role in [
        ("b/p", "zed", "sql"),
        ("a/p", "bob", "viewer"),
        ("a/p", "bob", "sql"),
        ("a/p", "amy", "train"),
        ("a-x/p", "bob", "sql"),
    ]:
        store.add_grant(Grant(pod_id, user, role, "owner", created_at=T0), audit("g"))

    def keys(grants: list[Grant]) -> list[tuple[str, str, str]]:
        return [(g.pod_id, g.user, g.role) for g in grants]

    assert keys(store.list_grants()) == [
        ("a-x/p", "bob", "sql"),
        ("a/p", "amy", "train"),
        ("a/p", "bob", "sql"),
        ("a/p", "bob", "viewer"),
        ("b/p", "zed", "sql"),
    ]
    assert keys(store.list_grants(pod_id="a/p", user="bob")) == [
        ("a/p", "bob", "sql"),
        ("a/p", "bob", "viewer"),
    ]
    assert keys(store.list_grants(user="bob")) == [
        ("a-x/p", "bob", "sql"),
        ("a/p", "bob", "sql"),
        ("a/p", "bob", "viewer"),
    ]
    assert store.list_grants(pod_id="none/p") == []


def test_usage_limit_is_set_replaced_and_audited(store: HubStore) -> None:
    """set_usage_limit inserts or replaces one limit and audits every call."""
    first = UsageLimit("alice/census", "bob", "mlp", 100, "alice", created_at=T0)
    store.set_usage_limit(first, audit("limit.set"))
    second = UsageLimit("alice/census", "bob", "mlp", 5, "root", created_at=at(1))
    store.set_usage_limit(second, audit("limit.reset"))
    assert store.list_usage_limits("alice/census") == [second]
    assert actions(store) == ["limit.set", "limit.reset"]


def test_usage_limit_is_removed_once(store: HubStore) -> None:
    """remove_usage_limit is True and audited once; then False with no event."""
    store.set_usage_limit(UsageLimit("a/p", "bob", "*", 3, "a", created_at=T0), audit("set"))
    assert store.remove_usage_limit("a/p", "bob", "*", audit("remove")) is True
    assert store.remove_usage_limit("a/p", "bob", "*", audit("remove.again")) is False
    assert store.list_usage_limits("a/p") == []
    assert actions(store) == ["set", "remove"]


def test_usage_limits_are_listed_by_user_and_model(store: HubStore) -> None:
    """list_usage_limits gives one pod's limits by user then model, optionally one user's."""
    for pod_id, user, model in [
        ("a/p", "bob", "mlp"),
        ("a/p", "bob", "*"),
        ("a/p", "amy", "cnn"),
        ("b/p", "bob", "mlp"),
    ]:
        store.set_usage_limit(UsageLimit(pod_id, user, model, 1, "a", created_at=T0), audit("s"))
    listed = store.list_usage_limits("a/p")
    assert [(x.user, x.model) for x in listed] == [("amy", "cnn"), ("bob", "*"), ("bob", "mlp")]
    assert [x.model for x in store.list_usage_limits("a/p", user="bob")] == ["*", "mlp"]
    assert store.list_usage_limits("none/p") == []


# -- projects --------------------------------------------------------------------------


def make_project(name: str, owner: str = "alice") -> Project:
    """A project created at T0."""
    return Project(name, owner, name.title(), description="d", created_at=T0)


def test_project_is_created_once_with_an_audit_event(store: HubStore) -> None:
    """create_project stores and audits; a taken name raises and writes no event."""
    project = make_project("cancer")
    store.create_project(project, audit("project.create"))
    assert store.get_project("cancer") == project
    with pytest.raises(AlreadyExistsError):
        store.create_project(make_project("cancer", owner="bob"), audit("project.again"))
    assert store.get_project("cancer") == project
    assert store.get_project("absent") is None
    assert actions(store) == ["project.create"]


def test_projects_are_listed_by_name_for_owners_and_members(store: HubStore) -> None:
    """list_projects sorts by name; with member, only projects owned or joined."""
    for name, owner in [("zeta", "alice"), ("alpha", "bob"), ("mid", "carol")]:
        store.create_project(make_project(name, owner), audit("create"))
    store.add_project_member("mid", "alice", audit("join"))
    assert [p.name for p in store.list_projects()] == ["alpha", "mid", "zeta"]
    assert [p.name for p in store.list_projects(member="alice")] == ["mid", "zeta"]
    assert [p.name for p in store.list_projects(member="bob")] == ["alpha"]
    assert store.list_projects(member="mallory") == []


def test_project_members_change_once_with_audit(store: HubStore) -> None:
    """Adding or removing a member is True and audited once; repeats are False, silent."""
    store.create_project(make_project("p"), audit("create"))
    assert store.add_project_member("p", "bob", audit("member.add")) is True
    assert store.add_project_member("p", "bob", audit("member.again")) is False
    assert store.add_project_member("p", "amy", audit("member.add")) is True
    assert store.list_project_members("p") == ["amy", "bob"]
    assert store.remove_project_member("p", "bob", audit("member.remove")) is True
    assert store.remove_project_member("p", "bob", audit("member.remove.again")) is False
    assert store.list_project_members("p") == ["amy"]
    assert actions(store) == ["create", "member.add", "member.add", "member.remove"]


def test_project_pods_change_once_with_audit(store: HubStore) -> None:
    """Adding or removing a pod is True and audited once; repeats are False, silent."""
    store.create_project(make_project("p"), audit("create"))
    assert store.add_project_pod("p", "b/x", audit("pod.add")) is True
    assert store.add_project_pod("p", "a-b/x", audit("pod.add")) is True
    assert store.add_project_pod("p", "b/x", audit("pod.again")) is False
    assert store.list_project_pods("p") == ["a-b/x", "b/x"]
    assert store.remove_project_pod("p", "b/x", audit("pod.remove")) is True
    assert store.remove_project_pod("p", "b/x", audit("pod.remove.again")) is False
    assert store.list_project_pods("p") == ["a-b/x"]
    assert actions(store) == ["create", "pod.add", "pod.add", "pod.remove"]


def test_changes_to_an_absent_project_are_false_and_silent(store: HubStore) -> None:
    """Members, pods and tasks of an unknown project: False, nothing stored, no event."""
    task = ProjectTask("ghost", "h1", "d", "alice", created_at=T0)
    assert store.add_project_member("ghost", "bob", audit("x")) is False
    assert store.remove_project_member("ghost", "bob", audit("x")) is False
    assert store.add_project_pod("ghost", "a/p", audit("x")) is False
    assert store.approve_project_task(task, audit("x")) is False
    assert store.revoke_project_task("ghost", "h1", audit("x")) is False
    assert store.list_project_members("ghost") == []
    assert store.list_project_pods("ghost") == []
    assert store.list_project_tasks("ghost") == []
    assert store.list_audit() == []


def test_project_tasks_are_approved_once_and_listed_oldest_first(store: HubStore) -> None:
    """approve is True and audited once; tasks list by approval time then hash."""
    store.create_project(make_project("p"), audit("create"))
    late = ProjectTask("p", "h0", "late", "alice", created_at=at(5))
    early_b = ProjectTask("p", "hb", "b", "alice", created_at=at(1))
    early_a = ProjectTask("p", "ha", "a", "alice", created_at=at(1))
    for task in (late, early_b, early_a):
        assert store.approve_project_task(task, audit("task.approve")) is True
    assert store.approve_project_task(late, audit("task.again")) is False
    assert store.list_project_tasks("p") == [early_a, early_b, late]
    assert store.revoke_project_task("p", "hb", audit("task.revoke")) is True
    assert store.revoke_project_task("p", "hb", audit("task.revoke.again")) is False
    assert store.list_project_tasks("p") == [early_a, late]
    assert actions(store) == ["create"] + ["task.approve"] * 3 + ["task.revoke"]


# -- audit -----------------------------------------------------------------------------


def test_audit_events_get_increasing_ids_and_round_trip(store: HubStore) -> None:
    """append_audit assigns increasing ids; events read back field for field."""
    detail = {"roles": ["sql", "viewer"], "count": 3, "nested": {"ok": True, "n": None}}
    first = store.append_audit(
        NewAuditEvent(T0, "alice", "decide", "alice/census", "bob", "ACCEPT", detail)
    )
    second = store.append_audit(NewAuditEvent(at(1), "bob", "login"))
    assert second.event_id > first.event_id
    assert (first.pod_id, first.subject, first.outcome, first.detail) == (
        "alice/census",
        "bob",
        "ACCEPT",
        detail,
    )
    assert store.list_audit() == [second, first]


def test_audit_is_paged_newest_first_with_before_id(store: HubStore) -> None:
    """list_audit pages back through events with limit and before_id."""
    ids = [store.append_audit(NewAuditEvent(at(i), "alice", f"e{i}")).event_id for i in range(7)]
    seen: list[int] = []
    before: int | None = None
    while page := store.list_audit(limit=3, before_id=before):
        assert len(page) <= 3
        seen.extend(e.event_id for e in page)
        before = page[-1].event_id
    assert seen == ids[::-1]
    assert [e.action for e in store.list_audit(limit=2, before_id=ids[3])] == ["e2", "e1"]


def test_audit_is_filtered_by_pods_and_actor(store: HubStore) -> None:
    """pod_ids keeps events of those pods (an empty list none); actor keeps one actor's."""
    store.append_audit(NewAuditEvent(T0, "alice", "a1", pod_id="alice/census"))
    store.append_audit(NewAuditEvent(T0, "bob", "b1", pod_id="bob/trials"))
    store.append_audit(NewAuditEvent(T0, "bob", "b2"))
    store.append_audit(NewAuditEvent(T0, "alice", "a2", pod_id="alice/other"))

    def listed(**filters: Any) -> list[str]:
        return [e.action for e in store.list_audit(**filters)]

    assert listed(pod_ids=["alice/census", "alice/other"]) == ["a2", "a1"]
    assert listed(pod_ids=["bob/trials"], actor="alice") == []
    assert listed(pod_ids=[]) == []
    assert listed(actor="bob") == ["b2", "b1"]
    assert listed(pod_ids=["alice/census", "bob/trials"], before_id=3) == ["b1", "a1"]


def test_times_in_other_zones_keep_their_instant(store: HubStore) -> None:
    """An aware time in another zone reads back as the same instant, still aware."""
    tokyo = datetime(2026, 3, 4, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=9)))
    store.create_user(User("alice", "h", created_at=tokyo))
    store.append_audit(NewAuditEvent(tokyo, "alice", "login"))
    user = store.get_user("alice")
    (event,) = store.list_audit()
    assert user is not None
    for value in (user.created_at, event.at):
        assert value == tokyo
        assert value.utcoffset() is not None
        assert value.astimezone(UTC) == datetime(2026, 3, 4, 5, 0, 0, 123456, tzinfo=UTC)


# -- SQL store only --------------------------------------------------------------------


def test_sql_store_refuses_naive_datetimes(sql_store: SqlHubStore) -> None:
    """A naive datetime is refused rather than stored in an unknown zone."""
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        sql_store.create_user(User("alice", "h", created_at=datetime(2026, 1, 1)))
    assert sql_store.get_user("alice") is None


def test_heartbeat_is_one_update_statement(sql_store: SqlHubStore) -> None:
    """record_heartbeat sends exactly one statement, an UPDATE."""
    sql_store.save_pod(make_pod("alice", "census"))
    statements: list[str] = []

    def collect(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(sql_store.engine, "before_cursor_execute", collect)
    try:
        assert sql_store.record_heartbeat("alice", "census", at(1)) is True
    finally:
        sa.event.remove(sql_store.engine, "before_cursor_execute", collect)
    work = [s for s in statements if not s.startswith(("BEGIN", "COMMIT"))]
    assert len(work) == 1
    assert work[0].lstrip().upper().startswith("UPDATE HUB_PODS")


@pytest.mark.integration
def test_postgresql_sorts_by_code_point_whatever_the_collation(postgres_url: str) -> None:
    """On a database whose columns sort by a language's rules, lists keep code point order."""
    store = SqlHubStore(create_hub_engine(postgres_url))
    upgrade_to_head(store.engine)
    try:
        with store.engine.begin() as conn:
            icu = sa.text("SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'")
            if conn.execute(icu).first() is None:
                pytest.skip("this PostgreSQL has no ICU collations")
            for table, column in [("hub_users", "name"), ("hub_pods", "pod_id")]:
                conn.execute(
                    sa.text(
                        f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar COLLATE "en-x-icu"'
                    )
                )
        names = ["ab", "a_b", "a-b", "a0", "a"]
        for name in names:
            store.create_user(User(name, "h", created_at=T0))
            store.save_pod(make_pod(name, "p"))
        assert [u.name for u in store.list_users()] == sorted(names)
        assert pod_ids(store.list_pods(PodQuery())) == sorted(f"{n}/p" for n in names)
    finally:
        store.close()
