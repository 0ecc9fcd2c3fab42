"""Relay frames: envelopes and control frames as msgpack maps, decoded strictly.

Every frame is one msgpack map with a format version ``"v"`` (1) and a ``"type"``. An
envelope frame has the keys ``v type task from to seq at meta body``. Control frames:

==============  ==========  ========================================================
type            direction   keys besides ``v`` and ``type``
==============  ==========  ========================================================
``SUBSCRIBE``   to hub      ``mailboxes`` (1 to 256 mailbox names)
``ACK``         to hub      ``ids`` (1 to 1024 delivery ids)
``DELIVER``     to client   ``id`` (the delivery id to acknowledge), ``env`` (an
                            envelope map, spliced in whole by :func:`encode_deliver`)
``RECEIPT``     to client   ``task``, ``to``, ``seq``: that message is stored durably
``REFUSED``     to client   ``task``, ``to``, ``seq``, ``code`` (a :class:`CloseCode`),
                            ``reason``: that message was not accepted
==============  ==========  ========================================================

Decoding checks the size before unpacking, then refuses anything else: trailing bytes,
other containers, unknown or missing keys, repeated keys, unknown types, bad names,
integers out of range, non-finite floats, extension types. Each refusal is a
:class:`FrameError` carrying the close code to answer with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from podium.core.messages._envelope import Envelope
from podium.core.messages._errors import CloseCode, FrameError, MessageError
from podium.core.messages._names import is_valid_task_id, parse_mailbox
from podium.core.messages._types import ControlType, MessageType
from podium.core.messages._values import check_int, check_str
from podium.core.messages._wire import Limits, Malformed, pack, require_keys, unpack

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DELIVER_OVERHEAD",
    "FORMAT_VERSION",
    "Ack",
    "ControlFrame",
    "Deliver",
    "Receipt",
    "Refused",
    "Subscribe",
    "decode_client_frame",
    "decode_frame",
    "decode_hub_frame",
    "encode_control",
    "encode_deliver",
    "encode_frame",
]

FORMAT_VERSION = 1
#: A sensible frame limit: bodies travel in chunks of a few MiB.
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
#: Bytes a ``DELIVER`` frame may add around the envelope frame it carries (34 at most).
DELIVER_OVERHEAD = 64
MAX_SUBSCRIBE = 256
MAX_ACK_IDS = 1024
MAX_REFUSED_REASON = 123

_ENVELOPE_KEYS = frozenset({"v", "type", "task", "from", "to", "seq", "at", "meta", "body"})
_CONTROL_KEYS = {
    ControlType.SUBSCRIBE: frozenset({"v", "type", "mailboxes"}),
    ControlType.ACK: frozenset({"v", "type", "ids"}),
    ControlType.DELIVER: frozenset({"v", "type", "id", "env"}),
    ControlType.RECEIPT: frozenset({"v", "type", "task", "to", "seq"}),
    ControlType.REFUSED: frozenset({"v", "type", "task", "to", "seq", "code", "reason"}),
}
_TYPES: dict[str, MessageType | ControlType] = {
    **{member.value: member for member in MessageType},
    **{member.value: member for member in ControlType},
}
_TO_HUB = frozenset({ControlType.SUBSCRIBE, ControlType.ACK})
_MAP_MARKERS = frozenset({*range(0x80, 0x90), 0xDE, 0xDF})


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Client to hub: deliver messages from these mailboxes (each must be the client's)."""

    mailboxes: tuple[str, ...]

    def __post_init__(self) -> None:
        if type(self.mailboxes) is not tuple or not 1 <= len(self.mailboxes) <= MAX_SUBSCRIBE:
            raise MessageError(f"mailboxes must be a tuple of 1 to {MAX_SUBSCRIBE} names")
        for name in self.mailboxes:
            parse_mailbox(name)


@dataclass(frozen=True, slots=True)
class Ack:
    """Client to hub: the deliveries with these ids are handled and may be forgotten."""

    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if type(self.ids) is not tuple or not 1 <= len(self.ids) <= MAX_ACK_IDS:
            raise MessageError(f"ids must be a tuple of 1 to {MAX_ACK_IDS} delivery ids")
        for value in self.ids:
            check_int(value, "delivery id", low=0)


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hub to client: a message from one of the client's mailboxes."""

    id: int
    envelope: Envelope

    def __post_init__(self) -> None:
        check_int(self.id, "delivery id", low=0)
        if not isinstance(self.envelope, Envelope):
            raise MessageError("envelope must be an Envelope")


def _check_ref(task_id: object, recipient: object, seq: object) -> None:
    if not is_valid_task_id(task_id):
        raise MessageError("task_id must be 32 lowercase hex digits")
    parse_mailbox(recipient)
    check_int(seq, "seq", low=0)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Hub to client: the message ``(task_id, recipient, seq)`` is stored durably."""

    task_id: str
    recipient: str
    seq: int

    def __post_init__(self) -> None:
        _check_ref(self.task_id, self.recipient, self.seq)


def _close_code(value: object) -> CloseCode:
    if isinstance(value, CloseCode):
        return value
    try:
        return CloseCode(check_int(value, "code"))
    except ValueError:
        raise MessageError(f"code {value!r} is not a relay close code") from None


@dataclass(frozen=True, slots=True)
class Refused:
    """Hub to client: the message ``(task_id, recipient, seq)`` was not accepted."""

    task_id: str
    recipient: str
    seq: int
    code: CloseCode
    reason: str

    def __post_init__(self) -> None:
        _check_ref(self.task_id, self.recipient, self.seq)
        object.__setattr__(self, "code", _close_code(self.code))
        check_str(self.reason, "reason", max_chars=MAX_REFUSED_REASON)
        if len(self.reason.encode()) > MAX_REFUSED_REASON:
            raise MessageError(f"reason is longer than {MAX_REFUSED_REASON} bytes of UTF-8")


ControlFrame = Subscribe | Ack | Deliver | Receipt | Refused


def _envelope_map(envelope: Envelope) -> dict[str, object]:
    return {
        "v": FORMAT_VERSION,
        "type": envelope.type,
        "task": envelope.task_id,
        "from": envelope.sender,
        "to": envelope.recipient,
        "seq": envelope.seq,
        "at": envelope.sent_at,
        "meta": dict(envelope.meta),
        "body": envelope.body,
    }


def _bin_header(size: int) -> bytes:
    """The msgpack bin header of ``size`` bytes (what ``packb`` writes before them)."""
    if size < 1 << 8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def encode_frame(envelope: Envelope) -> bytes:
    """The frame of an envelope. Byte for byte what packing :func:`_envelope_map` gives,
    but the body (the last entry) is copied once, not through msgpack's growing buffer."""
    fields = _envelope_map(envelope)
    body = fields.pop("body")
    assert isinstance(body, bytes)
    head = pack(fields)  # a fixmap: one byte holds the count, which we raise by one
    return b"".join((bytes((head[0] + 1,)), head[1:], pack("body"), _bin_header(len(body)), body))


def encode_deliver(delivery_id: int, frame: bytes) -> bytes:
    """A ``DELIVER`` frame around an envelope frame, without unpacking it: the hub
    stores the frames it accepted and forwards them as they are.

    ``frame`` must be the output of :func:`encode_frame` (or a frame that passed
    :func:`decode_frame`); the receiver decodes the envelope in it as strictly as any.
    """
    check_int(delivery_id, "delivery id", low=0)
    if not frame or frame[0] not in _MAP_MARKERS:
        raise MessageError("frame is not an encoded envelope")
    head = b"\x84" + pack("v") + pack(FORMAT_VERSION) + pack("type") + pack("DELIVER")
    return head + pack("id") + pack(delivery_id) + pack("env") + frame


def encode_control(frame: ControlFrame) -> bytes:
    """The frame of a control message."""
    head: dict[str, object] = {"v": FORMAT_VERSION}
    if isinstance(frame, Deliver):
        return encode_deliver(frame.id, encode_frame(frame.envelope))
    if isinstance(frame, Subscribe):
        return pack({**head, "type": ControlType.SUBSCRIBE, "mailboxes": list(frame.mailboxes)})
    if isinstance(frame, Ack):
        return pack({**head, "type": ControlType.ACK, "ids": list(frame.ids)})
    ref = {"task": frame.task_id, "to": frame.recipient, "seq": frame.seq}
    if isinstance(frame, Receipt):
        return pack({**head, "type": ControlType.RECEIPT, **ref})
    return pack(
        {
            **head,
            "type": ControlType.REFUSED,
            **ref,
            "code": int(frame.code),
            "reason": frame.reason,
        }
    )


def _limits(max_frame_bytes: int) -> Limits:
    # strings: names and meta (256 characters, up to 1 KiB of UTF-8); arrays: ACK ids
    return Limits(max_str_len=1024, max_bin_len=max_frame_bytes, max_array_len=1024, max_map_len=32)


def _unpack_frame(data: object, max_frame_bytes: int) -> object:
    if type(data) is not bytes and type(data) is not bytearray:
        raise FrameError(CloseCode.MALFORMED_FRAME, "a frame must be binary")
    if len(data) > max_frame_bytes:
        raise FrameError(CloseCode.FRAME_TOO_LARGE, f"{len(data)} > {max_frame_bytes} bytes")
    try:
        return unpack(bytes(data), _limits(max_frame_bytes))  # bytes(b) is b: no copy
    except Malformed as error:
        raise FrameError(CloseCode.MALFORMED_FRAME, error.reason) from None


def _head(value: object) -> MessageType | ControlType:
    if type(value) is not dict or "v" not in value or "type" not in value:
        raise FrameError(CloseCode.MALFORMED_FRAME, "a frame is a map with 'v' and 'type'")
    version = value["v"]
    if type(version) is not int:
        raise FrameError(CloseCode.MALFORMED_FRAME, "'v' is not an integer")
    if version != FORMAT_VERSION:
        raise FrameError(CloseCode.UNSUPPORTED_VERSION, f"version {version}")
    kind = value["type"]
    if type(kind) is not str:
        raise FrameError(CloseCode.MALFORMED_FRAME, "'type' is not a string")
    found = _TYPES.get(kind)
    if found is None:
        raise FrameError(CloseCode.UNKNOWN_MESSAGE_TYPE, "unknown type")
    return found


def _envelope(value: object, kind: MessageType) -> Envelope:
    fields = require_keys(value, _ENVELOPE_KEYS, "an envelope")
    if type(fields["at"]) is not float:
        raise Malformed("'at' is not a float")
    if type(fields["meta"]) is not dict:
        raise Malformed("'meta' is not a map")
    return Envelope(
        type=kind,
        task_id=fields["task"],  # type: ignore[arg-type]  # checked by Envelope
        sender=fields["from"],  # type: ignore[arg-type]
        recipient=fields["to"],  # type: ignore[arg-type]
        seq=fields["seq"],  # type: ignore[arg-type]
        sent_at=fields["at"],
        meta=fields["meta"],
        body=fields["body"],  # type: ignore[arg-type]
    )


def _control(value: object, kind: ControlType) -> ControlFrame:
    fields = require_keys(value, _CONTROL_KEYS[kind], f"the {kind} frame")
    if kind is ControlType.SUBSCRIBE or kind is ControlType.ACK:
        items = fields["mailboxes" if kind is ControlType.SUBSCRIBE else "ids"]
        if type(items) is not list:
            raise Malformed("expected an array")
        if kind is ControlType.SUBSCRIBE:
            return Subscribe(tuple(items))
        return Ack(tuple(items))
    if kind is ControlType.DELIVER:
        inner = _head(fields["env"])
        if not isinstance(inner, MessageType):
            raise FrameError(CloseCode.UNKNOWN_MESSAGE_TYPE, "a DELIVER must carry a message")
        return Deliver(fields["id"], _envelope(fields["env"], inner))  # type: ignore[arg-type]
    ref = (fields["task"], fields["to"], fields["seq"])
    if kind is ControlType.RECEIPT:
        return Receipt(*ref)  # type: ignore[arg-type]
    return Refused(*ref, fields["code"], fields["reason"])  # type: ignore[arg-type]


@contextmanager
def _refusals() -> Iterator[None]:
    """Translate a refusal while reading a frame's fields into a :class:`FrameError`."""
    try:
        yield
    except Malformed as error:
        raise FrameError(CloseCode.MALFORMED_FRAME, error.reason) from None
    except FrameError:
        raise
    except MessageError as error:
        raise FrameError(CloseCode.MALFORMED_FRAME, str(error)[:200]) from None


def _unexpected(kind: MessageType | ControlType) -> FrameError:
    return FrameError(CloseCode.UNKNOWN_MESSAGE_TYPE, f"{kind} is not expected here")


def decode_frame(data: bytes, *, max_frame_bytes: int) -> Envelope:
    """The envelope in ``data``; control frames are refused.

    Raises:
        FrameError: ``data`` is larger than ``max_frame_bytes`` (checked before unpacking)
            or not a valid envelope frame; ``code`` says which close code to answer with.
    """
    value = _unpack_frame(data, max_frame_bytes)
    kind = _head(value)
    if not isinstance(kind, MessageType):
        raise _unexpected(kind)
    with _refusals():
        return _envelope(value, kind)


def decode_client_frame(data: bytes, *, max_frame_bytes: int) -> Envelope | Subscribe | Ack:
    """What the hub accepts from a client: an envelope to relay, ``SUBSCRIBE`` or ``ACK``.

    Raises:
        FrameError: As :func:`decode_frame`; a hub-to-client type is an unexpected type.
    """
    value = _unpack_frame(data, max_frame_bytes)
    kind = _head(value)
    with _refusals():
        if isinstance(kind, MessageType):
            return _envelope(value, kind)
        frame = _control(value, kind)
        if isinstance(frame, Subscribe | Ack):
            return frame
    raise _unexpected(kind)


def decode_hub_frame(data: bytes, *, max_frame_bytes: int) -> Deliver | Receipt | Refused:
    """What a client accepts from the hub: ``DELIVER``, ``RECEIPT`` or ``REFUSED``.

    ``max_frame_bytes`` is the limit of envelope frames; the frame itself may be up to
    :data:`DELIVER_OVERHEAD` bytes larger, to carry an envelope frame of that size.

    Raises:
        FrameError: As :func:`decode_frame`; an envelope or a client-to-hub type is an
            unexpected type.
    """
    value = _unpack_frame(data, max_frame_bytes + DELIVER_OVERHEAD)
    kind = _head(value)
    if isinstance(kind, MessageType) or kind in _TO_HUB:
        raise _unexpected(kind)
    with _refusals():
        frame = _control(value, kind)
        if isinstance(frame, Deliver | Receipt | Refused):
            return frame
    raise _unexpected(kind)
