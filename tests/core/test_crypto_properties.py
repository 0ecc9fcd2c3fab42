"""Property tests: round trips succeed, and changing any one byte of a sealed message, a
session message or a signature makes it fail."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.crypto import (
    CanonicalEncodingError,
    DecryptionError,
    EncryptionKeyPair,
    InvalidSignatureError,
    SequenceError,
    SessionKey,
    SessionOpener,
    SessionSealer,
    SigningKeyPair,
    canonical_bytes,
    open_sealed,
    parse_canonical,
    seal,
    sign,
    verify,
)

POD = EncryptionKeyPair.generate()
SIGNER = SigningKeyPair.generate()
SESSION = SessionKey.generate()
PROPERTY = settings(max_examples=100, derandomize=True, deadline=None)

_PLAINTEXT = st.binary(max_size=512)
_AAD = st.binary(max_size=64)
#: Which byte to change (taken modulo the length) and a non-zero XOR mask for it.
_FLIP = st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255))


def _flipped(data: bytes, flip: tuple[int, int]) -> bytes:
    index, mask = flip[0] % len(data), flip[1]
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


@PROPERTY
@given(plaintext=_PLAINTEXT, aad=_AAD)
def test_sealed_messages_round_trip(plaintext: bytes, aad: bytes) -> None:
    """Whatever the plaintext and aad, the recipient opens exactly what was sealed."""
    assert open_sealed(POD, seal(POD.public_bytes, plaintext, aad=aad), aad=aad) == plaintext


@PROPERTY
@given(plaintext=_PLAINTEXT, aad=_AAD, flip=_FLIP)
def test_any_changed_byte_of_a_sealed_message_fails(
    plaintext: bytes, aad: bytes, flip: tuple[int, int]
) -> None:
    """Changing any single byte of a sealed message makes it fail to open."""
    sealed = seal(POD.public_bytes, plaintext, aad=aad)

    try:
        open_sealed(POD, _flipped(sealed, flip), aad=aad)
    except DecryptionError:
        return
    raise AssertionError(f"byte {flip[0] % len(sealed)} changed and it still opened")


@PROPERTY
@given(messages=st.lists(_PLAINTEXT, min_size=1, max_size=5))
def test_session_streams_round_trip(messages: list[bytes]) -> None:
    """A stream opens in order to the same messages and finishes on its final one."""
    sealer = SessionSealer(SESSION, "task", "pod")
    opener = SessionOpener(SESSION, "task", "pod")
    last = len(messages) - 1

    opened = [
        opener.open(*sealer.seal(message, final=i == last), final=i == last)
        for i, message in enumerate(messages)
    ]

    assert opened == messages
    opener.finish()


@PROPERTY
@given(plaintext=_PLAINTEXT, final=st.booleans(), flip=_FLIP)
def test_any_changed_byte_of_a_session_message_fails(
    plaintext: bytes, final: bool, flip: tuple[int, int]
) -> None:
    """Changing any single byte of a session message makes it fail, and the stream still
    accepts the genuine message afterwards."""
    seq, ciphertext = SessionSealer(SESSION, "task", "pod").seal(plaintext, final=final)
    opener = SessionOpener(SESSION, "task", "pod")

    try:
        opener.open(seq, _flipped(ciphertext, flip), final=final)
    except DecryptionError:
        assert opener.open(seq, ciphertext, final=final) == plaintext
        return
    raise AssertionError("a changed session message still opened")


@PROPERTY
@given(messages=st.lists(_PLAINTEXT, min_size=2, max_size=5), data=st.data())
def test_any_order_but_the_sealed_one_is_refused(
    messages: list[bytes], data: st.DataObject
) -> None:
    """Presenting the messages in any other order fails at the first one out of place."""
    sealer = SessionSealer(SESSION, "task", "pod")
    sealed = [sealer.seal(m, final=i == len(messages) - 1) for i, m in enumerate(messages)]
    order = data.draw(st.permutations(range(len(sealed))).filter(lambda p: p != sorted(p)))
    opener = SessionOpener(SESSION, "task", "pod")

    try:
        for position, index in enumerate(order):
            seq, ciphertext = sealed[index]
            opener.open(seq, ciphertext, final=index == len(messages) - 1)
            assert index == position
    except SequenceError:
        return
    raise AssertionError(f"order {order} was accepted")


@PROPERTY
@given(data=_PLAINTEXT, flip=_FLIP, in_signature=st.booleans())
def test_any_changed_byte_of_a_signature_or_its_data_fails(
    data: bytes, flip: tuple[int, int], in_signature: bool
) -> None:
    """A signature verifies its data, and not once one byte of either is changed."""
    signature = sign(SIGNER, data)
    verify(SIGNER.public_bytes, data, signature)
    if not in_signature and not data:
        return

    try:
        if in_signature:
            verify(SIGNER.public_bytes, data, _flipped(signature, flip))
        else:
            verify(SIGNER.public_bytes, _flipped(data, flip), signature)
    except InvalidSignatureError:
        return
    raise AssertionError("a changed signature or message still verified")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@PROPERTY
@given(value=_JSON)
def test_canonical_encoding_round_trips(value: object) -> None:
    """Parsing a canonical encoding gives back the value, which encodes the same again."""
    encoded = canonical_bytes(value)

    assert parse_canonical(encoded) == value
    assert canonical_bytes(parse_canonical(encoded)) == encoded


@PROPERTY
@given(value=_JSON, extra=st.floats(allow_nan=False, allow_infinity=False))
def test_finite_floats_round_trip_exactly(value: object, extra: float) -> None:
    """Any finite float reads back as the same double from its canonical bytes."""
    encoded = canonical_bytes([value, {"x": extra}])
    decoded = parse_canonical(encoded)
    assert decoded[1]["x"] == extra or (extra != extra)
    assert repr(decoded[1]["x"]) == repr(extra)
    assert canonical_bytes(decoded) == encoded


@PROPERTY
@given(value=_JSON, extra=st.sampled_from([float("nan"), float("inf"), float("-inf")]))
def test_nan_and_infinities_anywhere_are_refused(value: object, extra: float) -> None:
    """NaN or an infinity anywhere in a value makes it have no canonical encoding."""
    try:
        canonical_bytes([value, {"x": extra}])
    except CanonicalEncodingError:
        return
    raise AssertionError("a non-finite float was encoded")
