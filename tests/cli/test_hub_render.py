"""What the CLI prints of another user's text cannot drive the reader's terminal."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from podium.cli._hub_render import pods_table, print_pod
from podium.hub.schemas import PodOut

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def _pod() -> PodOut:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    return PodOut(
        pod_id="mallory/trap",
        owner="mallory",
        name="trap",
        display_name=f"Trap{ESCAPES}",
        description=f"hello{ESCAPES}\tworld\nline two [bold]x[/bold]",
        schema_={"name": "t", "columns": [{"name": f"c{ESCAPES}", "stype": "text"}]},
        schema_hash="",
        number_of_records=None,
        status="online",
        last_heartbeat_at=now,
        created_at=now,
        updated_at=now,
    )


def _render(*renderables: object) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None, force_terminal=False)
    for item in renderables:
        console.print(item)
    return buffer.getvalue()


def test_pod_details_lose_control_characters_but_keep_text() -> None:
    """ESC, BEL and C1 controls are dropped; tabs, newlines and brackets stay as written."""
    buffer = io.StringIO()
    print_pod(Console(file=buffer, width=120, color_system=None), _pod())
    shown = buffer.getvalue()
    assert not any(ch in shown for ch in "\x1b\x07\x9b")
    assert "hello]0;pwned" in shown
    assert "line two [bold]x[/bold]" in shown


def test_pod_tables_lose_control_characters() -> None:
    """The pods table shows the display name without its escape sequences."""
    shown = _render(pods_table([_pod()]))
    assert "\x1b" not in shown
    assert "Trap]0;pwned" in shown
