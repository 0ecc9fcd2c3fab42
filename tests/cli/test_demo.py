"""``podium demo``: a real hub on loopback, the census pod registered, decisions made."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from podium.hub.config import HubConfig
from podium.hub.server import open_services

pytestmark = pytest.mark.integration


def test_demo_registers_the_census_pod_and_decides(tmp_path: Path) -> None:
    """The demo's pod goes online, bob is refused, then accepted for SQL only, all audited."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("podium")),
            "demo",
            "--json",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures == {
        "pod": "alice/census-income",
        "status": "online",
        "decisions": ["REFUSE", "ACCEPT", "REFUSE"],
        "audit_events": 9,
    }
    assert "Hub listening on http://127.0.0.1:" in result.stderr
    for key in ("signing-key.pem", "encryption-key.pem"):
        mode = stat.S_IMODE((tmp_path / "pod-keys" / key).stat().st_mode)
        assert mode == 0o600, key
    with open_services(HubConfig(data_dir=tmp_path / "hub")) as services:
        pod = services.store.get_pod("alice", "census-income")
        assert pod is not None
        assert pod.number_of_records == 32561
        assert {c["name"] for c in pod.schema["columns"]} >= {"age", "TARGET"}
        assert "fnlwgt" not in {c["name"] for c in pod.schema["columns"]}
