"""The ``Pod`` API: Bitfount's arguments, no I/O in the constructor, and a pod with two
datasources running against a real hub on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from podium import Pod
from podium.config import PodDataConfig, PodDetailsConfig
from podium.core.errors import ConfigError
from podium.data import CSVSource, DataFrameSource, Schema, SchemaLevel
from podium.hub.client import HubClient
from podium.hub.models import utcnow
from podium.pod import DatasourceContainerConfig
from podium.pod.keys import load_or_create_pod_keys
from podium.pod.pod import schema_stages, source_schema
from tests.hub.conftest import PASSWORD, make_services
from tests.hub.relay.hub_server import running_hub

FRAME = pd.DataFrame({"age": [30, 41, 52, 63] * 5, "city": ["a", "b"] * 10})


def container(name: str = "census", **options: object) -> DatasourceContainerConfig:
    return DatasourceContainerConfig(name, DataFrameSource(FRAME), **options)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("PODIUM_HOME", str(folder))
    for variable in ("PODIUM_HUB", "PODIUM_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return folder


def test_constructing_a_pod_does_no_io(home: Path) -> None:
    pod = Pod("census", datasources=[container()], hub="http://127.0.0.1:9", secrets="pdm_a_b")
    assert not home.exists()
    assert (pod.name, pod.pod_identifier, pod.pod_ids) == ("census", None, [])
    named = Pod("census", datasources=[container()], username="alice")
    assert named.pod_identifier == "alice/census"
    assert named.pod_ids == ["alice/census"]


def test_the_single_datasource_form_still_works_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="datasources="):
        pod = Pod(
            "census",
            datasource=DataFrameSource(FRAME),
            pod_details_config=PodDetailsConfig(display_name="Census"),
            data_config=PodDataConfig(description="people"),
        )
    single = pod.datasource
    assert single is not None
    assert single.name == "census"
    assert single.datasource_details is not None
    assert single.datasource_details.display_name == "Census"


def test_datasource_with_several_warns_and_gives_none(caplog: pytest.LogCaptureFixture) -> None:
    pod = Pod("clinic", datasources=[container("scans"), container("notes")])
    with caplog.at_level(logging.WARNING, logger="podium.pod"):
        assert pod.datasource is None
    assert "2 datasources" in caplog.text
    assert [c.name for c in pod.datasources] == ["scans", "notes"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "no datasource"),
        ({"datasources": []}, "must be given and unique"),
        ({"datasources": [container("a"), container("a")]}, "must be given and unique"),
        ({"datasources": [container("Bad_Name")]}, "datasource name"),
        ({"datasources": [container()], "message_service": object()}, "part of the hub"),
        ({"datasources": [container("a"), container("b")], "pod_keys": object()}, "pod_keys"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Pod("census", **arguments)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pod name"):
        Pod("Not A Name", datasources=[container()])


def test_both_forms_at_once_are_refused() -> None:
    with (
        pytest.warns(DeprecationWarning, match="datasource="),
        pytest.raises(ConfigError, match="not both"),
    ):
        Pod("census", datasource=DataFrameSource(FRAME), datasources=[container()])


async def test_starting_without_hub_or_key_says_what_to_give() -> None:
    with pytest.raises(ConfigError, match="PODIUM_HUB"):
        await Pod("census", datasources=[container()]).start_async()
    with pytest.raises(ConfigError, match="PODIUM_API_KEY"):
        await Pod("census", datasources=[container()], hub="http://127.0.0.1:9").start_async()


def test_source_schema_given_loaded_or_inferred(tmp_path: Path) -> None:
    inferred = source_schema(container())
    assert [c.name for c in inferred.columns] == ["age", "city"]
    assert inferred.num_records == 20
    assert source_schema(container(schema=inferred)) is inferred
    saved = tmp_path / "schema.json"
    saved.write_text(inferred.to_json())
    assert source_schema(container(schema=saved)) == inferred
    assert source_schema(container(schema=saved), update=True) == inferred
    hidden = source_schema(container(), hide_record_count=True)
    assert hidden.num_records is None
    assert isinstance(hidden, Schema)


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    services = make_services(tmp_path, utcnow)
    services.accounts.create_user("alice", PASSWORD, is_admin=False, now=utcnow())
    _, key = services.accounts.create_api_key("alice", "clinic", utcnow())
    with running_hub(services) as relay_url:
        yield relay_url.replace("ws://", "http://").removesuffix("/relay"), key


async def test_a_pod_with_two_datasources_serves_both(hub_url: tuple[str, str], home: Path) -> None:
    """Each datasource is registered (with its own keys) and shows online; cancelling
    the pod stops it; the owner comes from the API key."""
    url, key = hub_url
    pod = Pod("clinic", datasources=[container("scans"), container("notes")], hub=url, secrets=key)
    running = asyncio.create_task(pod.start_async())
    try:
        async with asyncio.timeout(20):
            await pod.ready.wait()
        assert pod.pod_ids == ["alice/scans", "alice/notes"]
        async with HubClient(url, token=key) as alice:
            async with asyncio.timeout(10):
                for pod_id in pod.pod_ids:
                    while (await alice.get_pod(pod_id)).status != "online":
                        await asyncio.sleep(0.05)
                while (scans := await alice.get_pod("alice/scans")).schema_["level"] != "full":
                    await asyncio.sleep(0.05)
        assert scans.number_of_records == 20
        keys = load_or_create_pod_keys(home / "pods" / "alice" / "scans" / "keys")
        assert keys.signing.public_b64 in {k.public_key for k in scans.keys}
        assert (home / "pods" / "alice" / "clinic" / "pod.db").exists()
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert os.stat(home / "pods" / "alice" / "clinic" / "pod.db").st_mode & 0o077 == 0


def test_a_file_source_says_when_its_file_is_gone(tmp_path: Path) -> None:
    csv = tmp_path / "census.csv"
    FRAME.to_csv(csv, index=False)
    source = CSVSource(csv)
    assert source.unavailable() is None
    csv.unlink()
    reason = source.unavailable()
    assert reason is not None
    assert "census.csv" in reason
    assert DataFrameSource(FRAME).unavailable() is None


def test_schema_stages_go_from_partial_to_full(tmp_path: Path) -> None:
    """A source read in several batches shows a partial schema first, the full one last;
    a DP pod's stages carry no record count."""
    csv = tmp_path / "big.csv"
    pd.concat([FRAME] * 50).to_csv(csv, index=False)  # 1,000 rows
    big = DatasourceContainerConfig("big", CSVSource(csv, batch_rows=100))
    stages = list(schema_stages(big))
    assert [s.level for s in stages] == [SchemaLevel.PARTIAL, SchemaLevel.FULL]
    assert stages[-1].num_records == 1000
    assert (stages[0].num_records or 0) < 1000
    hidden = list(schema_stages(big, hide_record_count=True))
    assert all(s.num_records is None for s in hidden)
    assert source_schema(big) == stages[-1]
