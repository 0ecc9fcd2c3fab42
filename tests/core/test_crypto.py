"""Keys and key files, sealing, signatures, signed requests, nonces and session streams."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from podium.core.crypto import (
    SEAL_OVERHEAD,
    CanonicalEncodingError,
    CryptoError,
    DecryptionError,
    EncryptionKeyPair,
    InMemoryNonceRegistry,
    InvalidKeyError,
    InvalidSignatureError,
    KeyFileError,
    ReplayedNonceError,
    SequenceError,
    SessionKey,
    SessionOpener,
    SessionSealer,
    SignedRequest,
    SigningKeyPair,
    StaleRequestError,
    b64url_decode,
    b64url_encode,
    canonical_bytes,
    check_request,
    key_id_for,
    open_sealed,
    parse_canonical,
    seal,
    sign,
    verify,
)
from podium.core.errors import ExitCode, PodiumError
from podium.hub import registry
from podium.hub.models import KeyPurpose

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
AAD = b"pod/alice/census|task-1"
#: A point of order 8 on Curve25519 (from the libsodium blacklist).
LOW_ORDER = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


# --- encodings and key ids -------------------------------------------------------------


def test_key_id_matches_the_hub_registry() -> None:
    """The hub's key id is core's, and is sha256(purpose NUL raw) cut to 24 hex digits."""
    raw = bytes(range(32))
    expected = hashlib.sha256(b"signing\0" + raw).hexdigest()[:24]

    assert key_id_for("signing", raw) == expected
    assert registry.key_id_for(KeyPurpose.SIGNING, raw) == expected
    assert key_id_for("encryption", raw) != expected


def test_base64url_has_no_padding_and_round_trips() -> None:
    """Encoding drops the padding; decoding accepts it with or without, and refuses junk."""
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b64url_decode("-_8=") == b"\xfb\xff"
    for bad in ("a+b/", "a b", "A", "A===", "AB=C"):
        with pytest.raises(ValueError, match="not base64url"):
            b64url_decode(bad)


def test_public_key_is_accepted_by_the_hub_registry() -> None:
    """``public_b64`` decodes with the registry's own decoder to the raw public bytes."""
    signing, encryption = SigningKeyPair.generate(), EncryptionKeyPair.generate()

    assert registry.decode_public_key(KeyPurpose.SIGNING, signing.public_b64) == (
        signing.public_bytes
    )
    assert registry.decode_public_key(KeyPurpose.ENCRYPTION, encryption.public_b64) == (
        encryption.public_bytes
    )
    assert "=" not in signing.public_b64
    assert len(signing.public_bytes) == 32
    assert signing.key_id == key_id_for("signing", signing.public_bytes)
    assert encryption.key_id == key_id_for("encryption", encryption.public_bytes)


def test_canonical_bytes_sort_keys_and_drop_whitespace() -> None:
    """Keys sorted at every level, no spaces, UTF-8 not escaped, tuples as lists."""
    value = {"b": [1, True, None], "a": {"z": "é", "y": (2,)}}

    assert canonical_bytes(value) == '{"a":{"y":[2],"z":"é"},"b":[1,true,null]}'.encode()
    assert parse_canonical(canonical_bytes(value)) == {
        "a": {"y": [2], "z": "é"},
        "b": [1, True, None],
    }


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"x": float("nan")}, r"\$\.x: nan"),
        ({"x": float("inf")}, "inf"),
        ({"x": float("-inf")}, "-inf"),
        ({1: "a"}, "only str keys"),
        ({"x": b"raw"}, "b64url_encode"),
        ({"x": {1, 2}}, "a set has no canonical"),
        ({"x": "\ud800"}, "not valid Unicode"),
    ],
)
def test_canonical_bytes_refuse_what_has_no_single_encoding(value: object, match: str) -> None:
    """NaN and infinities, non-str keys, bytes, sets and lone surrogates."""
    with pytest.raises(CanonicalEncodingError, match=match):
        canonical_bytes(value)


def test_canonical_bytes_refuse_deep_nesting() -> None:
    """A value nested past the limit is refused, not a RecursionError."""
    value: object = 0
    for _ in range(100):
        value = [value]

    with pytest.raises(CanonicalEncodingError, match="deeper"):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":1.50}',
        b'{"a":1e0}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":1,"a":1}',
        b"\xff",
        b"{",
    ],
)
def test_parse_canonical_refuses_other_forms(data: bytes) -> None:
    """Unsorted keys, whitespace, floats not in shortest form, NaN, infinities, duplicate
    keys, bad UTF-8, broken JSON."""
    with pytest.raises(CanonicalEncodingError):
        parse_canonical(data)


# --- key files ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [SigningKeyPair, EncryptionKeyPair])
def test_key_file_round_trip_with_mode_0600(
    tmp_path: Path, kind: type[SigningKeyPair] | type[EncryptionKeyPair]
) -> None:
    """A saved key is PKCS8 PEM, mode 0600, loads back to the same key, and leaves no
    temporary file."""
    keys = kind.generate()
    path = tmp_path / "key.pem"
    old_umask = os.umask(0)
    try:
        keys.save(path)
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert kind.load(path).public_bytes == keys.public_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    """An existing key file is kept; ``overwrite=True`` replaces it, still 0600."""
    path = tmp_path / "key.pem"
    first, second = SigningKeyPair.generate(), SigningKeyPair.generate()
    first.save(path)

    with pytest.raises(KeyFileError, match=r"already exists.*overwrite=True"):
        second.save(path)
    assert SigningKeyPair.load(path).public_bytes == first.public_bytes

    second.save(path, overwrite=True)
    assert SigningKeyPair.load(path).public_bytes == second.public_bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_load_refuses_a_key_others_may_read(tmp_path: Path, mode: int) -> None:
    """A key file readable by group or others is refused with the chmod to run."""
    path = tmp_path / "key.pem"
    SigningKeyPair.generate().save(path)
    path.chmod(mode)

    with pytest.raises(KeyFileError, match=re.escape(f"chmod 600 {path}")) as caught:
        SigningKeyPair.load(path)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_load_refuses_missing_garbage_and_the_wrong_kind(tmp_path: Path) -> None:
    """A missing file, a non-key and a key of another algorithm are each refused."""
    with pytest.raises(KeyFileError, match="no key file"):
        SigningKeyPair.load(tmp_path / "missing.pem")

    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM"):
        SigningKeyPair.load(garbage)

    x25519 = tmp_path / "x25519.pem"
    EncryptionKeyPair.generate().save(x25519)
    with pytest.raises(KeyFileError, match="not an Ed25519 signing"):
        SigningKeyPair.load(x25519)

    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an X25519 encryption"):
        EncryptionKeyPair.load(ec)


def test_save_into_a_missing_folder_is_a_key_file_error(tmp_path: Path) -> None:
    """A folder that is not there gives a KeyFileError naming the file."""
    with pytest.raises(KeyFileError, match="cannot write the key file"):
        SigningKeyPair.generate().save(tmp_path / "nope" / "key.pem")


def test_repr_never_shows_the_private_key() -> None:
    """A key pair's repr shows its key id only."""
    keys = SigningKeyPair.generate()

    assert repr(keys) == f"SigningKeyPair(key_id={keys.key_id!r})"


# --- sealing -----------------------------------------------------------------------------


def test_seal_round_trip_and_layout() -> None:
    """A sealed message opens with the right key and aad; it is version, ephemeral key,
    nonce, then ciphertext, and two seals of one message differ."""
    pod = EncryptionKeyPair.generate()

    sealed = seal(pod.public_bytes, b"task", aad=AAD)

    assert open_sealed(pod, sealed, aad=AAD) == b"task"
    assert sealed[0] == 0x01
    assert len(sealed) == len(b"task") + SEAL_OVERHEAD == 1 + 32 + 12 + 4 + 16
    assert seal(pod.public_bytes, b"task", aad=AAD) != sealed
    assert open_sealed(pod, seal(pod.public_bytes, b"", aad=b""), aad=b"") == b""


def test_open_sealed_refuses_wrong_key_and_wrong_aad() -> None:
    """Another pod's key, or other associated data, does not open the message."""
    pod, other = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    sealed = seal(pod.public_bytes, b"task", aad=AAD)

    with pytest.raises(DecryptionError, match="does not open"):
        open_sealed(other, sealed, aad=AAD)
    with pytest.raises(DecryptionError, match="does not open"):
        open_sealed(pod, sealed, aad=AAD + b"x")


def test_open_sealed_refuses_bad_version_and_short_input() -> None:
    """An unknown version byte and anything shorter than the overhead are refused."""
    pod = EncryptionKeyPair.generate()
    sealed = seal(pod.public_bytes, b"task", aad=AAD)

    with pytest.raises(DecryptionError, match="version 2"):
        open_sealed(pod, b"\x02" + sealed[1:], aad=AAD)
    with pytest.raises(DecryptionError, match="at least 61"):
        open_sealed(pod, sealed[: SEAL_OVERHEAD - 1], aad=AAD)
    with pytest.raises(DecryptionError):
        open_sealed(pod, sealed[:-1], aad=AAD)


@pytest.mark.parametrize("point", [bytes(32), b"\x01" + bytes(31), LOW_ORDER])
def test_low_order_points_are_refused(point: bytes) -> None:
    """Sealing to, or opening from, a low-order point (all-zero secret) is refused."""
    pod = EncryptionKeyPair.generate()
    sealed = seal(pod.public_bytes, b"task", aad=AAD)

    with pytest.raises(InvalidKeyError, match="low-order"):
        seal(point, b"task", aad=AAD)
    with pytest.raises(DecryptionError, match="low-order"):
        open_sealed(pod, sealed[:1] + point + sealed[33:], aad=AAD)


def test_seal_refuses_a_key_of_the_wrong_size() -> None:
    """A recipient key that is not 32 bytes is an InvalidKeyError."""
    with pytest.raises(InvalidKeyError, match="32 bytes, not 31"):
        seal(bytes(31), b"task", aad=AAD)


# --- signatures --------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    """A signature verifies for its data and key, and for nothing else."""
    keys, other = SigningKeyPair.generate(), SigningKeyPair.generate()
    signature = sign(keys, b"data")

    verify(keys.public_bytes, b"data", signature)
    for public, data, sig in [
        (other.public_bytes, b"data", signature),
        (keys.public_bytes, b"datb", signature),
        (keys.public_bytes, b"data", signature[:-1]),
        (keys.public_bytes, b"data", bytes(64)),
        (keys.public_bytes[:31], b"data", signature),
    ]:
        with pytest.raises(InvalidSignatureError):
            verify(public, data, sig)


# --- signed requests ---------------------------------------------------------------------


def _request(keys: SigningKeyPair, *, now: datetime = NOW) -> SignedRequest:
    return SignedRequest.build(
        keys,
        modeller="alice",
        pod_id="bob/census",
        task_hash="ab" * 32,
        payload={"task": {"sql": "SELECT 1"}, "session_key": SessionKey.generate().b64},
        now=now,
    )


def _check(
    request: SignedRequest,
    keys: SigningKeyPair,
    *,
    pod_id: str = "bob/census",
    now: datetime = NOW,
    nonces: InMemoryNonceRegistry | None = None,
) -> None:
    check_request(
        request,
        public=keys.public_bytes,
        pod_id=pod_id,
        now=now,
        nonces=InMemoryNonceRegistry() if nonces is None else nonces,
    )


def test_signed_request_round_trips_through_its_wire_form() -> None:
    """The wire form parses back to an equal request, which passes the checks."""
    keys = SigningKeyPair.generate()
    request = _request(keys)

    parsed = SignedRequest.from_bytes(request.to_bytes())

    assert parsed == request
    assert len(parsed.nonce) == 16
    assert parsed.timestamp == int(NOW.timestamp())
    _check(parsed, keys)


def test_each_request_has_a_fresh_nonce() -> None:
    """Two requests built alike carry different nonces."""
    keys = SigningKeyPair.generate()

    assert _request(keys).nonce != _request(keys).nonce


def test_check_request_refuses_another_signer_and_another_pod() -> None:
    """A request not signed by the given key, or addressed elsewhere, is INVALID_SIGNATURE."""
    keys = SigningKeyPair.generate()
    request = _request(keys)

    with pytest.raises(InvalidSignatureError):
        _check(request, SigningKeyPair.generate())
    with pytest.raises(InvalidSignatureError, match="reached pod 'bob/other'"):
        _check(request, keys, pod_id="bob/other")


def test_a_changed_field_breaks_the_signature() -> None:
    """Changing the payload after signing makes the check fail."""
    keys = SigningKeyPair.generate()
    request = _request(keys)
    forged = SignedRequest(
        request.modeller,
        request.pod_id,
        request.task_hash,
        request.timestamp,
        request.nonce,
        {"task": {"sql": "DROP TABLE x"}},
        request.signature,
    )

    with pytest.raises(InvalidSignatureError):
        _check(forged, keys)


@pytest.mark.parametrize(
    ("age", "error"),
    [
        (timedelta(minutes=5), None),
        (timedelta(minutes=5, seconds=1), StaleRequestError),
        (timedelta(hours=3), StaleRequestError),
        (-timedelta(seconds=30), None),
        (-timedelta(seconds=31), StaleRequestError),
    ],
)
def test_stale_and_future_requests(age: timedelta, error: type[Exception] | None) -> None:
    """Older than 5 minutes or more than 30 s ahead is STALE_REQUEST; the edges pass."""
    keys = SigningKeyPair.generate()
    request = _request(keys, now=NOW - age)

    if error is None:
        _check(request, keys)
    else:
        with pytest.raises(error):
            _check(request, keys)


def test_a_replayed_nonce_is_refused() -> None:
    """The same request checked twice is a replay the second time."""
    keys = SigningKeyPair.generate()
    request = _request(keys)
    nonces = InMemoryNonceRegistry()

    _check(request, keys, nonces=nonces)
    with pytest.raises(ReplayedNonceError, match="replay"):
        _check(request, keys, nonces=nonces, now=NOW + timedelta(seconds=1))


def test_refused_requests_do_not_record_their_nonce() -> None:
    """A stale or forged request leaves the nonce registry empty."""
    keys = SigningKeyPair.generate()
    nonces = InMemoryNonceRegistry()

    with pytest.raises(StaleRequestError):
        _check(_request(keys, now=NOW - timedelta(hours=1)), keys, nonces=nonces)
    with pytest.raises(InvalidSignatureError):
        _check(_request(SigningKeyPair.generate()), keys, nonces=nonces)

    assert len(nonces) == 0


def test_check_request_needs_an_aware_now() -> None:
    """A naive ``now`` is a programming error, not a silent local-time guess."""
    keys = SigningKeyPair.generate()

    with pytest.raises(ValueError, match="timezone-aware"):
        _check(_request(keys), keys, now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"[]",
        b'{"a":1}',
        b'{"modeller":"a","nonce":"AAAAAAAAAAAAAAAAAAAAAA","payload":{},"pod_id":"p",'
        b'"task_hash":"h","timestamp":1,"v":2}',
        b'{"modeller":1,"nonce":"AAAAAAAAAAAAAAAAAAAAAA","payload":{},"pod_id":"p",'
        b'"task_hash":"h","timestamp":1,"v":1}',
        b'{"modeller":"a","nonce":"AAAA","payload":{},"pod_id":"p",'
        b'"task_hash":"h","timestamp":1,"v":1}',
        b'{"modeller":"a","nonce":"AAAAAAAAAAAAAAAAAAAAAA","payload":[],"pod_id":"p",'
        b'"task_hash":"h","timestamp":true,"v":1}',
    ],
)
def test_malformed_requests_are_refused(body: bytes) -> None:
    """Wrong fields, version, types or nonce size are INVALID_SIGNATURE, not a crash."""
    with pytest.raises(InvalidSignatureError, match="signed request"):
        SignedRequest.from_bytes(bytes(64) + body)


def test_floats_encode_in_their_shortest_form() -> None:
    """A finite float is written as its shortest round-tripping repr, distinct from ints."""
    assert canonical_bytes({"lr": 0.1, "n": 1, "x": 1.0, "y": -0.0}) == (
        b'{"lr":0.1,"n":1,"x":1.0,"y":-0.0}'
    )
    assert parse_canonical(b'{"lr":0.1}') == {"lr": 0.1}


def test_a_payload_with_a_nan_cannot_be_signed() -> None:
    """Building a request over a NaN refuses it up front."""
    with pytest.raises(CanonicalEncodingError):
        SignedRequest.build(
            SigningKeyPair.generate(),
            modeller="alice",
            pod_id="bob/census",
            task_hash="h",
            payload={"epsilon": float("nan")},
            now=NOW,
        )


# --- nonce registry ----------------------------------------------------------------------


def test_nonce_registry_forgets_after_its_retention() -> None:
    """A nonce is remembered for the retention and forgotten after it."""
    nonces = InMemoryNonceRegistry(timedelta(seconds=10))

    assert nonces.seen_before(b"n", NOW) is False
    assert nonces.seen_before(b"n", NOW + timedelta(seconds=9)) is True
    assert nonces.seen_before(b"n", NOW + timedelta(seconds=10)) is False
    assert len(nonces) == 1


def test_nonce_registry_is_atomic_across_threads() -> None:
    """Of many threads racing on one nonce, exactly one sees it as new."""
    nonces = InMemoryNonceRegistry()
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def race() -> None:
        barrier.wait()
        results.append(nonces.seen_before(b"n", NOW))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(False) == 1


# --- session streams ---------------------------------------------------------------------


def _stream(n: int) -> tuple[SessionKey, list[tuple[int, bytes]]]:
    key = SessionKey.generate()
    sealer = SessionSealer(key, "task-1", "pod")
    return key, [sealer.seal(f"m{i}".encode(), final=i == n - 1) for i in range(n)]


def test_session_round_trip_in_order() -> None:
    """Messages numbered from 0 open in order, and the stream finishes on the final one."""
    key, messages = _stream(3)
    opener = SessionOpener(key, "task-1", "pod")

    assert [seq for seq, _ in messages] == [0, 1, 2]
    opened = [opener.open(seq, ct, final=seq == 2) for seq, ct in messages]

    assert opened == [b"m0", b"m1", b"m2"]
    assert opener.finished
    opener.finish()


@pytest.mark.parametrize(
    ("key_ok", "task_id", "sender"),
    [(False, "task-1", "pod"), (True, "task-2", "pod"), (True, "task-1", "modeller")],
)
def test_session_refuses_wrong_key_task_or_sender(key_ok: bool, task_id: str, sender: str) -> None:
    """Another key, task id or sender does not open a message, and the stream does not
    advance."""
    key, messages = _stream(1)
    opener = SessionOpener(key if key_ok else SessionKey.generate(), task_id, sender)

    with pytest.raises(DecryptionError, match="does not open"):
        opener.open(0, messages[0][1], final=True)
    assert opener.next_seq == 0


def test_session_refuses_a_flipped_final_flag() -> None:
    """Claiming a middle message is final (or the final is not) fails to open."""
    key, messages = _stream(2)
    opener = SessionOpener(key, "task-1", "pod")

    with pytest.raises(DecryptionError):
        opener.open(0, messages[0][1], final=True)
    opener.open(0, messages[0][1], final=False)
    with pytest.raises(DecryptionError):
        opener.open(1, messages[1][1], final=False)


def test_session_refuses_replay_reorder_and_gap() -> None:
    """An old seq (replay), a later one (gap or reorder) are SequenceErrors."""
    key, messages = _stream(3)
    opener = SessionOpener(key, "task-1", "pod")

    with pytest.raises(SequenceError, match="gap before message 1; expected 0"):
        opener.open(1, messages[1][1], final=False)
    opener.open(0, messages[0][1], final=False)
    with pytest.raises(SequenceError, match="replayed or reordered message 0"):
        opener.open(0, messages[0][1], final=False)
    with pytest.raises(SequenceError, match="gap"):
        opener.open(2, messages[2][1], final=True)
    assert opener.open(1, messages[1][1], final=False) == b"m1"


def test_session_refuses_a_message_moved_to_another_seq() -> None:
    """A ciphertext presented under the expected seq but sealed for another fails."""
    key, messages = _stream(3)
    opener = SessionOpener(key, "task-1", "pod")

    with pytest.raises(DecryptionError):
        opener.open(0, messages[1][1], final=False)


def test_session_refuses_anything_after_the_final_message() -> None:
    """After the final message the opener refuses more, and the sealer seals no more."""
    key = SessionKey.generate()
    sealer = SessionSealer(key, "task-1", "pod")
    opener = SessionOpener(key, "task-1", "pod")
    seq, ct = sealer.seal(b"last", final=True)
    opener.open(seq, ct, final=True)

    with pytest.raises(SequenceError, match="already sealed its final"):
        sealer.seal(b"more")
    with pytest.raises(SequenceError, match="after the final"):
        opener.open(1, ct, final=False)


def test_session_finish_detects_truncation() -> None:
    """A stream that stops before its final message fails ``finish``."""
    key, messages = _stream(3)
    opener = SessionOpener(key, "task-1", "pod")
    for seq, ct in messages[:2]:
        opener.open(seq, ct, final=False)

    with pytest.raises(SequenceError, match="truncated"):
        opener.finish()


def test_session_refuses_a_too_short_ciphertext() -> None:
    """Fewer bytes than a nonce and a tag cannot be a message."""
    opener = SessionOpener(SessionKey.generate(), "task-1", "pod")

    with pytest.raises(DecryptionError, match="too short"):
        opener.open(0, bytes(27), final=False)


def test_session_key_travels_as_base64url_and_hides_its_secret() -> None:
    """A key survives its b64 form; a wrong size or junk is refused; repr hides it."""
    key = SessionKey.generate()

    assert SessionKey.from_b64(key.b64) == key
    assert key.secret.hex() not in repr(key)
    with pytest.raises(InvalidKeyError, match="32 bytes, not 16"):
        SessionKey.from_b64(b64url_encode(bytes(16)))
    with pytest.raises(InvalidKeyError, match="not base64url"):
        SessionKey.from_b64("***")


def test_every_crypto_error_is_a_podium_error() -> None:
    """The relay can catch CryptoError; the CLI can catch PodiumError."""
    for error in (
        KeyFileError,
        DecryptionError,
        SequenceError,
        InvalidSignatureError,
        StaleRequestError,
        ReplayedNonceError,
        CanonicalEncodingError,
        InvalidKeyError,
    ):
        assert issubclass(error, CryptoError)
        assert issubclass(error, PodiumError)
