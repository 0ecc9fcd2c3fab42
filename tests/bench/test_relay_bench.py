"""The relay benchmark's pure parts: the body's chunks, frames, figures, table and JSON line."""

from __future__ import annotations

import hashlib
import json
import math
import zlib

import pytest
from bench._relay_peers import (
    Parties,
    body_checksum,
    body_chunks,
    body_digest,
    chunk_sizes,
    envelope_frame,
    hub_headers,
    read_hub_frame,
)
from bench.relay import (
    FULL,
    MIB,
    QUICK,
    Copy,
    Latencies,
    Rate,
    Report,
    format_tables,
    summary,
)

from podium.core.messages import (
    CloseCode,
    Deliver,
    MessageType,
    Receipt,
    Refused,
    encode_control,
    encode_deliver,
    new_task_id,
    task_mailbox,
)


def test_chunk_sizes_cover_the_body_exactly() -> None:
    """Chunks are full-sized but the last, and add up to the body; an empty body has none."""
    assert chunk_sizes(10, 4) == [4, 4, 2]
    assert chunk_sizes(8, 4) == [4, 4]
    assert chunk_sizes(0, 4) == []
    with pytest.raises(ValueError, match="chunk"):
        chunk_sizes(10, 0)


def test_body_chunks_are_repeatable_and_not_all_alike() -> None:
    """The same seed gives the same body; consecutive chunks differ; the digest matches."""
    first = list(body_chunks(10_000, 4096, seed=1))
    assert [len(c) for c in first] == [4096, 4096, 1808]
    assert first == list(body_chunks(10_000, 4096, seed=1))
    assert first[0] != first[1]
    assert first != list(body_chunks(10_000, 4096, seed=2))
    assert body_digest(10_000, 4096, 1) == hashlib.sha256(b"".join(first)).hexdigest()
    assert body_checksum(10_000, 4096, 1) == f"{zlib.crc32(b''.join(first)):08x}"


def test_envelope_frames_round_trip_through_a_deliver() -> None:
    """A frame the benchmark builds decodes, inside a DELIVER, to the same envelope."""
    parties = Parties(modeller="alice", owner="acme", pod="census")
    task_id = new_task_id()
    recipient = task_mailbox(task_id, parties.modeller)
    frame = envelope_frame(
        MessageType.MODEL_PARAMETERS,
        task_id,
        parties.pod_party,
        recipient,
        3,
        b"x",
        {"final": True},
    )
    got = read_hub_frame(encode_deliver(7, frame))
    assert isinstance(got, Deliver)
    assert got.id == 7
    assert got.envelope.sender == "acme.census"
    assert got.envelope.seq == 3
    assert got.envelope.meta == {"final": True}
    assert isinstance(read_hub_frame(encode_control(Receipt(task_id, recipient, 3))), Receipt)


def test_a_refusal_or_a_text_frame_raises() -> None:
    """The benchmark stops on a REFUSED frame or a text frame from the hub."""
    task_id = new_task_id()
    refused = Refused(task_id, task_mailbox(task_id, "alice"), 2, CloseCode.FORBIDDEN_MAILBOX, "no")
    with pytest.raises(RuntimeError, match="refused"):
        read_hub_frame(encode_control(refused))
    with pytest.raises(RuntimeError, match="text"):
        read_hub_frame("hello")
    assert hub_headers("k") == {"Authorization": "Bearer k"}


def _copy(mode: str, seconds: float, peaks: dict[str, int], idle: dict[str, int]) -> Copy:
    return Copy(mode, 1000 * 1_000_000, seconds, peaks, idle)


def _report(*, hub_p50: float = 3.0, hub_seconds: float = 2.0) -> Report:
    sender_receiver = {"sender": 100 * MIB, "receiver": 120 * MIB}
    idle = {"sender": 50 * MIB, "receiver": 60 * MIB}
    hub_peaks = {**sender_receiver, "hub": 300 * MIB}
    return Report(
        round_trips=(
            Latencies("hub", (hub_p50 - 1, hub_p50, hub_p50 + 1)),
            Latencies("one hop", (0.1, 0.2, 0.3)),
        ),
        rates=(Rate("sqlite", 1000, 2.0), Rate("postgresql", 1000, 4.0)),
        copies={
            "tcp": _copy("tcp", 0.25, sender_receiver, idle),
            "ws": _copy("ws", 1.0, sender_receiver, idle),
            "hub": _copy("hub", hub_seconds, hub_peaks, {**idle, "hub": 100 * MIB}),
        },
    )


def test_figures_of_copies_rates_and_latencies() -> None:
    """Throughput is in MB/s, rate in messages/s, ratios divide the hub by a baseline."""
    report = _report()
    assert report.copies["hub"].mb_per_s == 500.0
    assert report.rates[1].per_s == 250.0
    assert report.ratio("tcp") == 0.125
    assert report.ratio("ws") == 0.5
    assert report.peak_rss_mib == 300.0
    assert report.peak_above_idle_mib == 200.0
    assert report.round_trips[0].p50 == 3.0
    assert math.isclose(report.round_trips[0].p99, 3.98)


def test_summary_has_the_required_keys_and_the_worst_rate() -> None:
    """The JSON line has the issue's keys; msgs_per_s is the slower backend's."""
    figures = json.loads(json.dumps(summary(_report(), FULL)))
    for key in ("rtt_p50_ms", "rtt_p99_ms", "ratio_raw_tcp", "ratio_one_hop_ws"):
        assert key in figures
    assert figures["msgs_per_s"] == 250.0
    assert figures["peak_rss_mib"] == 300.0
    assert figures["hub_above_idle_mib"] == 200.0
    assert figures["target_met"] is True
    assert summary(_report(hub_p50=6.0), FULL)["target_met"] is False
    assert summary(_report(hub_seconds=20.0), FULL)["target_met"] is False
    assert summary(_report(), QUICK)["target_met"] is None


def test_tables_show_each_part_and_verdicts() -> None:
    """The table has the round trips with a verdict, each backend's rate, each copy."""
    text = format_tables(_report(hub_p50=6.0))
    lines = text.splitlines()
    assert lines[1].startswith("hub")
    assert lines[1].endswith("MISSED")
    assert any(line.startswith("postgresql") and line.endswith("250") for line in lines)
    hub_row = next(line for line in lines if line.startswith("hub, sealed"))
    assert hub_row.split()[2:] == ["954", "500", "1.00", "100", "120", "300"]
    tcp_row = next(line for line in lines if line.startswith("raw TCP"))
    assert tcp_row.split()[-3:] == ["100", "120", "-"]
    assert "hub 200" in lines[-1]
    assert format_tables(_report()).splitlines()[1].endswith(" ok")
