"""Password hashing, signed tokens, the signing key file, API keys and user codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium.hub.config import PasswordCost
from podium.hub.errors import ErrorCode, HubError
from podium.hub.security import (
    API_KEY_PREFIX,
    PasswordHasher,
    TokenSigner,
    load_or_create_signing_key,
    new_api_key,
    new_opaque_token,
    new_user_code,
    parse_api_key,
    sha256_hex,
)
from tests.hub.conftest import FAST_PASSWORDS

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def hasher() -> PasswordHasher:
    """argon2id with cheap parameters."""
    return PasswordHasher(FAST_PASSWORDS)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fresh signing key."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(key: Ed25519PrivateKey) -> TokenSigner:
    """A token signer over ``key``."""
    return TokenSigner(key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "iss": "podium-hub",
        "sub": "alice",
        "adm": True,
        "typ": "access",
        "jti": "abc",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 600,
    }
    payload.update(overrides)
    return payload


# -- passwords ---------------------------------------------------------------------------


def test_password_hash_is_argon2id(hasher: PasswordHasher) -> None:
    """A stored password is an argon2id PHC string that does not contain the password."""
    hashed = hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert hasher.hash("correct horse battery") != hashed  # salted


def test_password_verify(hasher: PasswordHasher) -> None:
    """The right password verifies; a wrong one or a garbled hash does not."""
    hashed = hasher.hash("correct horse battery")
    assert hasher.verify(hashed, "correct horse battery")
    assert not hasher.verify(hashed, "correct horse battery!")
    assert not hasher.verify("$argon2id$garbage", "correct horse battery")


def test_dummy_verify_for_unknown_user(hasher: PasswordHasher) -> None:
    """With no stored hash (no such user) the answer is False, whatever the password."""
    assert not hasher.verify(None, "correct horse battery")
    assert not hasher.verify(None, "")


def test_needs_rehash_after_cost_change(hasher: PasswordHasher) -> None:
    """A hash made with weaker parameters is flagged for rehashing."""
    weak = hasher.hash("correct horse battery")
    stronger = PasswordHasher(PasswordCost(time_cost=2, memory_cost_kib=2048, parallelism=1))
    assert stronger.needs_rehash(weak)
    assert not hasher.needs_rehash(weak)


# -- tokens ------------------------------------------------------------------------------


def test_token_round_trip(signer: TokenSigner) -> None:
    """A token issued for a user verifies to the same claims."""
    token, claims = signer.issue("alice", is_admin=True, token_type="access", now=NOW, ttl_s=60)
    verified = signer.verify(token, token_type="access", now=NOW + timedelta(seconds=30))
    assert verified == claims
    assert verified.subject == "alice"
    assert verified.is_admin


def test_token_header_is_eddsa(signer: TokenSigner) -> None:
    """Tokens are signed with EdDSA (Ed25519)."""
    token, _ = signer.issue("alice", is_admin=False, token_type="access", now=NOW, ttl_s=60)
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_forged_signature_refused(signer: TokenSigner) -> None:
    """A token signed with another key is refused as ``invalid-token``."""
    other = TokenSigner(Ed25519PrivateKey.generate())
    token, _ = other.issue("alice", is_admin=True, token_type="access", now=NOW, ttl_s=60)
    with pytest.raises(HubError) as caught:
        signer.verify(token, token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_tampered_payload_refused(signer: TokenSigner) -> None:
    """Changing the payload of a signed token breaks its signature."""
    token, _ = signer.issue("bob", is_admin=False, token_type="access", now=NOW, ttl_s=60)
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64(json.dumps(_payload(sub='bob', adm=True)).encode())}.{signature}"
    with pytest.raises(HubError) as caught:
        signer.verify(forged, token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_alg_none_refused(signer: TokenSigner) -> None:
    """An unsigned token (``alg: none``) is refused."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_payload()).encode())
    with pytest.raises(HubError) as caught:
        signer.verify(f"{header}.{body}.", token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_hs256_with_public_key_refused(signer: TokenSigner, key: Ed25519PrivateKey) -> None:
    """Algorithm confusion: an HMAC token keyed with the hub's public key is refused."""
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_payload()).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(HubError) as caught:
        signer.verify(f"{header}.{body}.{_b64(mac)}", token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_expired_token_refused(signer: TokenSigner) -> None:
    """At and after its expiry (on the hub's clock) a token is ``token-expired``."""
    token, _ = signer.issue("alice", is_admin=False, token_type="access", now=NOW, ttl_s=60)
    signer.verify(token, token_type="access", now=NOW + timedelta(seconds=59))
    with pytest.raises(HubError) as caught:
        signer.verify(token, token_type="access", now=NOW + timedelta(seconds=60))
    assert caught.value.code == ErrorCode.TOKEN_EXPIRED
    assert caught.value.status == 401


def test_wrong_token_type_refused(signer: TokenSigner) -> None:
    """A web session token is not an access token, and the other way round."""
    token, _ = signer.issue("alice", is_admin=False, token_type="web", now=NOW, ttl_s=60)
    with pytest.raises(HubError) as caught:
        signer.verify(token, token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_token_from_the_future_refused(signer: TokenSigner) -> None:
    """A token issued well after the hub's now (beyond clock skew) is refused."""
    token, _ = signer.issue(
        "alice", is_admin=False, token_type="access", now=NOW + timedelta(hours=1), ttl_s=7200
    )
    with pytest.raises(HubError) as caught:
        signer.verify(token, token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_token_missing_claims_refused(signer: TokenSigner, key: Ed25519PrivateKey) -> None:
    """A validly signed token without ``typ`` or from another issuer is refused."""
    no_typ = {k: v for k, v in _payload().items() if k != "typ"}
    for payload in (no_typ, _payload(iss="someone-else"), _payload(exp="soon")):
        token = jwt.encode(payload, key, algorithm="EdDSA")
        with pytest.raises(HubError) as caught:
            signer.verify(token, token_type="access", now=NOW)
        assert caught.value.code == ErrorCode.INVALID_TOKEN


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "é.é.é", "x" * 5000])
def test_garbage_token_refused(signer: TokenSigner, garbage: str) -> None:
    """Strings that are not JWTs are ``invalid-token``, never an unexpected error."""
    with pytest.raises(HubError) as caught:
        signer.verify(garbage, token_type="access", now=NOW)
    assert caught.value.code == ErrorCode.INVALID_TOKEN


def test_csrf_token_bound_to_session(signer: TokenSigner) -> None:
    """A session's anti-forgery token checks for that session only; odd input is False."""
    token = signer.csrf_token("session-1")
    assert signer.check_csrf("session-1", token)
    assert not signer.check_csrf("session-2", token)
    assert not signer.check_csrf("session-1", "é" * 64)
    assert TokenSigner(Ed25519PrivateKey.generate()).csrf_token("session-1") != token


# -- the signing key file ----------------------------------------------------------------


def test_signing_key_created_private_and_reloaded(tmp_path: Path) -> None:
    """The key file is created with mode 0600 and the same key is read back."""
    path = tmp_path / "hub" / "hub-signing-key.pem"
    created = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reloaded = load_or_create_signing_key(path)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert created.public_key().public_bytes(*raw) == reloaded.public_key().public_bytes(*raw)
    token, _ = TokenSigner(created).issue(
        "alice", is_admin=False, token_type="access", now=NOW, ttl_s=60
    )
    assert TokenSigner(reloaded).verify(token, token_type="access", now=NOW).subject == "alice"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_signing_key_permissions_tightened(tmp_path: Path) -> None:
    """A key file readable by others is made private again when loaded."""
    path = tmp_path / "key.pem"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_signing_key_of_wrong_kind_refused(tmp_path: Path) -> None:
    """A PEM file that is not an Ed25519 private key is refused."""
    path = tmp_path / "key.pem"
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(HubError):
        load_or_create_signing_key(path)


# -- API keys, opaque tokens, user codes -------------------------------------------------


def test_api_key_round_trip() -> None:
    """A new key parses back into its id and secret."""
    parts = new_api_key()
    assert parts.full.startswith(f"{API_KEY_PREFIX}_")
    assert parse_api_key(parts.full) == parts
    assert len(parts.secret) >= 43  # 256 bits in base64url


def test_api_key_secret_may_hold_underscores() -> None:
    """The secret is everything after the id, underscores included."""
    parsed = parse_api_key("pdm_0123456789ab_se_cr_et")
    assert parsed is not None
    assert (parsed.key_id, parsed.secret) == ("0123456789ab", "se_cr_et")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "pdm",
        "pdm_",
        "pdm_0123456789ab",
        "pdm_0123456789ab_",
        "pdm__secret",
        "pdm_0123456789a_secret",
        "pdm_0123456789abc_secret",
        "pdm_0123456789AB_secret",
        "pdm_0123456789ag_secret",
        "PDM_0123456789ab_secret",
        "key_0123456789ab_secret",
        "eyJhbGciOiJFZERTQSJ9.e30.sig",
    ],
)
def test_api_key_parse_refuses_other_shapes(value: str) -> None:
    """Anything but ``pdm_<12 hex>_<secret>`` is not an API key."""
    assert parse_api_key(value) is None


def test_api_keys_and_tokens_are_unique() -> None:
    """Fresh keys and opaque tokens do not repeat."""
    assert len({new_api_key().key_id for _ in range(200)}) == 200
    assert len({new_opaque_token() for _ in range(200)}) == 200


def test_sha256_hex() -> None:
    """Secrets are stored as the hex SHA-256 of their UTF-8 bytes."""
    assert sha256_hex("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_user_code_alphabet() -> None:
    """User codes are ``XXXX-XXXX`` from consonants without look-alikes (RFC 8628 6.1)."""
    codes = [new_user_code() for _ in range(500)]
    seen: set[str] = set()
    for code in codes:
        assert len(code) == 9
        assert code[4] == "-"
        seen.update(code.replace("-", ""))
    assert seen <= set("BCDFGHJKLMNPQRSTVWXZ")
    assert not seen & set("AEIOUY01")
    assert len(seen) > 15  # the whole alphabet is used
    assert len(set(codes)) > 490
