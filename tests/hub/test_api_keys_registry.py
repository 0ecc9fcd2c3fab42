"""``/api/v1/keys``: registering, rotating, looking up and revoking public keys."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from podium.hub.errors import ErrorCode, HubError
from podium.hub.models import KeyPurpose
from podium.hub.registry import decode_public_key
from tests.hub.conftest import Account, Clock

KEYS = "/api/v1/keys"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
#: 32 bytes that are not an Ed25519 point (y = 2 gives no square root), but are a valid
#: X25519 public key (every 32 bytes are).
NOT_A_POINT = (2).to_bytes(32, "little")


def b64(raw: bytes) -> str:
    """Base64url without padding, as the registry stores keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signing_key() -> str:
    """A fresh Ed25519 public key, base64url."""
    return b64(Ed25519PrivateKey.generate().public_key().public_bytes(*RAW))


def encryption_key() -> str:
    """A fresh X25519 public key, base64url."""
    return b64(X25519PrivateKey.generate().public_key().public_bytes(*RAW))


async def register(
    client: httpx.AsyncClient, account: Account, owner: str, purpose: str, key: str
) -> httpx.Response:
    """POST a key."""
    return await client.post(
        KEYS,
        headers=account.headers,
        json={"owner": owner, "purpose": purpose, "public_key": key},
    )


async def listed(
    client: httpx.AsyncClient, account: Account, owner: str, **params: Any
) -> list[dict[str, Any]]:
    """The keys of ``owner``."""
    answer = await client.get(KEYS, headers=account.headers, params={"owner": owner, **params})
    assert answer.status_code == 200, answer.text
    keys: list[dict[str, Any]] = answer.json()
    return keys


@pytest.fixture
async def census(client: httpx.AsyncClient, alice: Account) -> str:
    """Alice's pod ``alice/census``."""
    answer = await client.put(
        "/api/v1/pods/alice/census", headers=alice.headers, json={"display_name": "Census"}
    )
    assert answer.status_code == 201
    return "alice/census"


async def test_register_signing_key(client: httpx.AsyncClient, alice: Account) -> None:
    """An Ed25519 key registers for its owner and is found by id."""
    key = signing_key()
    answer = await register(client, alice, "alice", "signing", key)
    assert answer.status_code == 201
    body = answer.json()
    assert (body["owner"], body["algorithm"], body["public_key"]) == ("alice", "Ed25519", key)
    assert body["revoked_at"] is None
    found = await client.get(f"{KEYS}/{body['key_id']}", headers=alice.headers)
    assert found.json() == body


async def test_register_encryption_key(client: httpx.AsyncClient, alice: Account) -> None:
    """An X25519 key registers with the X25519 algorithm."""
    answer = await register(client, alice, "alice", "encryption", encryption_key())
    assert answer.status_code == 201
    assert answer.json()["algorithm"] == "X25519"


async def test_same_bytes_differ_by_purpose(client: httpx.AsyncClient, alice: Account) -> None:
    """Any 32 bytes are an X25519 key, and the id depends on the purpose."""
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(*RAW)
    signing = (await register(client, alice, "alice", "signing", b64(raw))).json()
    encryption = await register(client, alice, "alice", "encryption", b64(raw))
    assert encryption.status_code == 201
    assert encryption.json()["key_id"] != signing["key_id"]
    not_a_point = await register(client, alice, "alice", "encryption", b64(NOT_A_POINT))
    assert not_a_point.status_code == 201


async def test_invalid_ed25519_bytes_refused(client: httpx.AsyncClient, alice: Account) -> None:
    """32 bytes that are not a point on Ed25519 are not a signing key."""
    answer = await register(client, alice, "alice", "signing", b64(NOT_A_POINT))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid-public-key"


@pytest.mark.parametrize("length", [31, 33, 40])
async def test_wrong_length_refused(client: httpx.AsyncClient, alice: Account, length: int) -> None:
    """Keys are exactly 32 bytes."""
    for purpose in ("signing", "encryption"):
        answer = await register(client, alice, "alice", purpose, b64(b"\x01" * length))
        assert answer.status_code == 422
        assert answer.json()["code"] == "invalid-public-key"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-3] + "!!!",  # characters outside the alphabet
        lambda k: k + "!!!",  # junk after a whole key: a lax decoder would skip it
        lambda k: k[:20] + " " + k[20:],  # whitespace inside
        lambda k: k.replace("-", "+").replace("_", "/") + "+/",  # standard alphabet
        lambda k: k[:-1],  # 42 characters: not a whole number of bytes
        lambda k: "é" * 43,
    ],
)
async def test_wrong_base64_refused(client: httpx.AsyncClient, alice: Account, mangle: Any) -> None:
    """Only base64url (optionally padded) is accepted, for either purpose."""
    for purpose in ("signing", "encryption"):
        answer = await register(client, alice, "alice", purpose, mangle(signing_key()))
        assert answer.status_code == 422
        assert answer.json()["code"] in {"invalid-public-key", "validation-failed"}


def test_decode_refuses_lax_base64() -> None:
    """A key with a junk character is refused even when the rest decodes to 32 bytes."""
    key = signing_key()
    assert len(decode_public_key(KeyPurpose.SIGNING, key)) == 32
    assert len(decode_public_key(KeyPurpose.SIGNING, key + "=")) == 32
    for bad in (key + "*", key[:10] + "." + key[10:], key + "==="):
        with pytest.raises(HubError) as caught:
            decode_public_key(KeyPurpose.ENCRYPTION, bad)
        assert caught.value.code == ErrorCode.INVALID_PUBLIC_KEY


async def test_rotation(client: httpx.AsyncClient, alice: Account, clock: Clock) -> None:
    """New key first; the old one stays by id, and once revoked lists only with the flag."""
    old = (await register(client, alice, "alice", "signing", signing_key())).json()
    clock.advance(60)
    new = (await register(client, alice, "alice", "signing", signing_key())).json()
    keys = await listed(client, alice, "alice", purpose="signing")
    assert [k["key_id"] for k in keys] == [new["key_id"], old["key_id"]]

    revoked = await client.delete(f"{KEYS}/{old['key_id']}", headers=alice.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] == "2026-11-22T12:01:00Z"
    assert [k["key_id"] for k in await listed(client, alice, "alice")] == [new["key_id"]]
    everything = await listed(client, alice, "alice", include_revoked="true")
    assert [k["key_id"] for k in everything] == [new["key_id"], old["key_id"]]
    by_id = await client.get(f"{KEYS}/{old['key_id']}", headers=alice.headers)
    assert by_id.status_code == 200
    assert by_id.json()["revoked_at"] is not None


async def test_list_filters_by_purpose(client: httpx.AsyncClient, alice: Account) -> None:
    """Listing by purpose gives only keys of that purpose."""
    await register(client, alice, "alice", "signing", signing_key())
    await register(client, alice, "alice", "encryption", encryption_key())
    keys = await listed(client, alice, "alice", purpose="encryption")
    assert [k["purpose"] for k in keys] == ["encryption"]


async def test_idempotent_reregister(
    client: httpx.AsyncClient, alice: Account, clock: Clock
) -> None:
    """Registering the same key again returns the existing record."""
    key = signing_key()
    first = (await register(client, alice, "alice", "signing", key)).json()
    clock.advance(60)
    again = await register(client, alice, "alice", "signing", key)
    assert again.json() == first
    assert len(await listed(client, alice, "alice")) == 1


async def test_key_of_another_owner_refused(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """A key registered by Alice cannot be registered again by Bob."""
    key = signing_key()
    await register(client, alice, "alice", "signing", key)
    answer = await register(client, bob, "bob", "signing", key)
    assert answer.status_code == 409


async def test_revoked_key_cannot_come_back(client: httpx.AsyncClient, alice: Account) -> None:
    """A revoked key stays revoked: registering it again is refused."""
    key = signing_key()
    created = (await register(client, alice, "alice", "signing", key)).json()
    await client.delete(f"{KEYS}/{created['key_id']}", headers=alice.headers)
    assert (await register(client, alice, "alice", "signing", key)).status_code == 409


async def test_cannot_register_for_others(
    client: httpx.AsyncClient, alice: Account, bob: Account, census: str
) -> None:
    """Bob cannot register keys for Alice or for Alice's pods."""
    for owner in ("alice", census):
        answer = await register(client, bob, owner, "signing", signing_key())
        assert answer.status_code == 403, owner
        assert answer.json()["code"] == "forbidden"
    assert await listed(client, bob, census) == []


async def test_register_for_own_pod(client: httpx.AsyncClient, alice: Account, census: str) -> None:
    """Alice registers a key of her pod; it shows in the pod's details."""
    answer = await register(client, alice, census, "encryption", encryption_key())
    assert answer.status_code == 201
    assert answer.json()["owner"] == census
    pod = (await client.get(f"/api/v1/pods/{census}", headers=alice.headers)).json()
    assert [k["key_id"] for k in pod["keys"]] == [answer.json()["key_id"]]


async def test_register_for_missing_pod(client: httpx.AsyncClient, alice: Account) -> None:
    """A key for a pod that does not exist is refused with 404."""
    answer = await register(client, alice, "alice/nothing", "signing", signing_key())
    assert answer.status_code == 404


async def test_cannot_revoke_others_key(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Bob cannot revoke Alice's key; it stays live."""
    created = (await register(client, alice, "alice", "signing", signing_key())).json()
    answer = await client.delete(f"{KEYS}/{created['key_id']}", headers=bob.headers)
    assert answer.status_code == 403
    assert len(await listed(client, alice, "alice")) == 1


async def test_unknown_key_id(client: httpx.AsyncClient, alice: Account) -> None:
    """Looking up a key id that does not exist is 404 ``key-not-found``."""
    answer = await client.get(f"{KEYS}/{'0' * 24}", headers=alice.headers)
    assert answer.status_code == 404
    assert answer.json()["code"] == "key-not-found"
    assert (await client.get(f"{KEYS}/not-hex", headers=alice.headers)).status_code == 422


async def test_list_owner_validated(client: httpx.AsyncClient, alice: Account) -> None:
    """The owner to list is a user name or a pod identifier."""
    for owner in ("", "Alice", "a/b/c", "alice\x00"):
        answer = await client.get(KEYS, headers=alice.headers, params={"owner": owner})
        assert answer.status_code == 422, owner
