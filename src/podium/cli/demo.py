"""``podium demo``: a federation on one machine, end to end, on the embedded default.

What it does, step by step (each step is printed):

1. starts a hub on a free loopback port over a fresh SQLite file (a temporary folder, or
   ``--data-dir``), exactly as ``podium hub serve`` would;
2. creates the pod owner ``alice`` and the modeller ``bob``; alice makes an API key for her
   pods;
3. splits the census-income data into three non-IID shares (each ``race`` on one pod) and
   starts three pods on them, as ``podium run-pod`` would: each infers its schema, keeps
   its keys in 0600 files, registers with the hub and listens on the relay;
4. bob sends a SQL query before he has any grant: every pod refuses it;
5. alice grants bob the ``general-modeller`` preset; bob's SQL aggregate runs on the three
   pods (groups below the pods' minimum size are suppressed there);
6. bob's summary statistics run on the three pods in streaming batches and are merged; the
   demo checks them against pandas on the pooled data;
7. writes the result tables and a manifest, prints where, and stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import uvicorn
from rich.console import Console
from rich.table import Table

from podium.core.errors import ConfigError
from podium.hub.client import HubClient
from podium.hub.config import HubConfig

if TYPE_CHECKING:
    from podium.modeller import Modeller

__all__ = ["run_demo"]

OWNER, MODELLER = "alice", "bob"
SQL = (
    "SELECT gender, TARGET, COUNT(*) AS people, AVG(age) AS mean_age, "
    'AVG("hours-per-week") AS mean_hours FROM "census" GROUP BY gender, TARGET '
    "ORDER BY gender, TARGET"
)
STAT_COLUMNS = ("age", "hours-per-week")
TRAIN_ROUNDS = 5


@contextlib.asynccontextmanager
async def running_hub(config: HubConfig) -> AsyncIterator[str]:
    """A hub serving on a free loopback port until the block ends; yields its URL."""
    from podium.hub.app import create_app
    from podium.hub.server import bind_socket, open_services, ws_max_size

    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    with open_services(config) as services:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(services),
                log_level="warning",
                access_log=False,
                ws_max_size=ws_max_size(config),
            )
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)
            sock.close()


def _create_users(config: HubConfig, passwords: dict[str, str]) -> None:
    from podium.hub.server import open_services

    with open_services(config) as services:
        for name, password in passwords.items():
            services.accounts.create_user(name, password, is_admin=False, now=services.now())


def _table(title: str, frame: pd.DataFrame, columns: list[str] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    shown = frame if columns is None else frame[columns]
    for column in shown.columns:
        table.add_column(
            str(column), justify="right" if shown[column].dtype.kind in "iuf" else "left"
        )
    for row in shown.itertuples(index=False):
        table.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    return table


@contextlib.asynccontextmanager
async def _running_pods(
    url: str, api_key: str, folder: Path, console: Console
) -> AsyncIterator[list[str]]:
    """Three census pods on non-IID shares, served in this process until the block ends."""
    from podium.cli.run_pod import pod_containers
    from podium.config import load_pod_config
    from podium.data.census import write_census_pods
    from podium.pod.keys import load_or_create_pod_keys
    from podium.pod.pod import Pod

    shares = await asyncio.to_thread(write_census_pods, folder / "pods", 3, by="race")
    pods = []
    for share in shares:
        config = load_pod_config(share.config)
        keys = await asyncio.to_thread(load_or_create_pod_keys, folder / "pod-keys" / share.name)
        pods.append(
            Pod(
                config.name,
                datasources=pod_containers(config, share.config),
                username=OWNER,
                hub=url,
                secrets=api_key,
                pod_keys=keys,
                pod_db=folder / "pod-db" / f"{share.name}.db",
                output_dir=folder / "pod-outputs",
            )
        )
        console.print(f"   {OWNER}/{share.name}: {share.rows:,} rows in {share.csv.name}")
    running = [asyncio.create_task(pod.start_async()) for pod in pods]
    try:
        async with asyncio.timeout(120):
            for pod, task in zip(pods, running, strict=True):
                ready = asyncio.create_task(pod.ready.wait())
                await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    task.result()
        yield [pod_id for pod in pods for pod_id in pod.pod_ids]
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def _pooled(folder: Path) -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(path) for path in sorted((folder / "pods").glob("*.csv"))], ignore_index=True
    )


async def _api_keys(url: str, passwords: dict[str, str]) -> dict[str, str]:
    keys = {}
    async with HubClient(url) as anonymous:
        for name, password in passwords.items():
            token = await anonymous.login_password(name, password)
            async with HubClient(url, token=token.access_token) as session:
                keys[name] = (await session.create_api_key(f"{name}-demo")).key
    return keys


async def _sql_steps(
    console: Console, *, url: str, keys: dict[str, str], bob: Modeller, pods: list[str], out: Path
) -> dict[str, Any]:
    """Steps 4 and 5: refused without a grant, then the aggregate on every pod."""
    from podium.algorithms.sql import SqlQuery
    from podium.core.errors import PodResponseError
    from podium.modeller import write_results
    from podium.protocols.base import RunOptions
    from podium.protocols.results_only import ResultsOnly

    sql = ResultsOnly(algorithm=SqlQuery(query=SQL, table="census"))
    console.print(f"[bold]4.[/bold] {MODELLER} sends a SQL query before any grant")
    refused = False
    try:
        await bob.run_async(sql, pods)
    except PodResponseError as error:
        refused = True
        console.print(f"   [red]refused[/red]: {str(error)[:200]}")
    console.print(f"[bold]5.[/bold] {OWNER} grants {MODELLER} general-modeller; the query runs")
    async with HubClient(url, token=keys[OWNER]) as alice:
        for pod in pods:
            await alice.grant(pod, MODELLER, "general-modeller")
    outcome = await bob.run_async(sql, pods, options=RunOptions(require_all_pods=True))
    table = outcome.result.combined[0]
    console.print(_table(f"SQL on {len(pods)} pods ({outcome.seconds:.2f} s)", table.combined))
    suppressed = {p: n.get("suppressed_groups") for p, n in table.notes.items()}
    console.print(f"   groups of fewer than 10 people suppressed on each pod: {suppressed}")
    manifest = await asyncio.to_thread(write_results, outcome, sql, out)
    return {
        "refused_before_grant": refused,
        "sql_completed": list(outcome.completed),
        "sql_rows": {p: len(f) for p, f in table.per_pod.items()},
        "sql_people": int(table.combined["people"].sum()),
        "sql_manifest": str(manifest),
    }


async def _statistics_step(
    console: Console, bob: Modeller, pods: list[str], data_dir: Path, out: Path
) -> dict[str, Any]:
    """Step 6: statistics streamed in batches on every pod, merged, checked with pandas."""
    from podium.algorithms.statistics import Statistics
    from podium.modeller import write_results
    from podium.protocols.base import RunOptions
    from podium.protocols.results_only import ResultsOnly

    console.print(
        f"[bold]6.[/bold] Summary statistics of {', '.join(STAT_COLUMNS)}, streamed in batches"
    )
    stats = ResultsOnly(algorithm=Statistics(columns=list(STAT_COLUMNS)))
    options = RunOptions(require_all_pods=True, batch_rows=5_000)
    outcome = await bob.run_async(stats, pods, options=options)
    result = outcome.result.combined[0]
    console.print(
        _table(
            f"Statistics over all pods ({outcome.seconds:.2f} s)",
            result.combined,
            ["column", "count", "mean", "std", "min", "q0.25", "q0.5", "q0.75", "max"],
        )
    )
    pooled = await asyncio.to_thread(_pooled, data_dir)
    combined = result.combined.set_index("column")
    matches = all(
        int(combined.loc[c, "count"]) == int(pooled[c].count())
        and abs(float(combined.loc[c, "mean"]) - float(pooled[c].mean())) < 1e-9
        for c in STAT_COLUMNS
    )
    console.print(f"   equal to pandas on the pooled data: {'yes' if matches else 'NO'}")
    manifest = await asyncio.to_thread(write_results, outcome, stats, out)
    return {
        "statistics_completed": list(outcome.completed),
        "statistics_count": {c: int(combined.loc[c, "count"]) for c in STAT_COLUMNS},
        "statistics_match_pandas": matches,
        "statistics_manifest": str(manifest),
    }


async def _training_step(
    console: Console, bob: Modeller, pods: list[str], out: Path
) -> dict[str, Any]:
    """``--train``: federated averaging of a tabular MLP on the three pods."""
    from podium.algorithms.model_training import FederatedModelTraining
    from podium.modeller import write_results
    from podium.protocols.base import RunOptions
    from podium.protocols.coordinator import TaskProgress
    from podium.protocols.fedavg import FederatedAveraging

    console.print(
        f"[bold]7.[/bold] Federated averaging: a tabular MLP predicting TARGET, "
        f"{TRAIN_ROUNDS} rounds of one local epoch on each pod"
    )
    training = FederatedModelTraining(
        model={"name": "TabularMLP", "hyperparameters": {"hidden": [64, 32]}},
        data_structure={"target": "TARGET"},
        seed=1,
    )
    task = FederatedAveraging(algorithm=training, rounds=TRAIN_ROUNDS)
    progress = TaskProgress(on_report=lambda line: console.print(f"   {line}"))
    outcome = await bob.run_async(
        task, pods, options=RunOptions(require_all_pods=True), progress=progress
    )
    result = outcome.result
    accuracy = result.test_combined.get("accuracy", float("nan"))
    console.print(f"   test accuracy over the three pods: {accuracy:.4f} ({outcome.seconds:.1f} s)")
    manifest = await asyncio.to_thread(write_results, outcome, task, out)
    console.print(f"   model, card and plot in {out}")
    return {
        "training_rounds": len(result.history),
        "training_accuracy": accuracy,
        "training_manifest": str(manifest),
    }


async def _demo(console: Console, data_dir: Path, train: bool = False) -> dict[str, Any]:
    from podium.modeller import Modeller
    from podium.pod.keys import load_or_create_pod_keys

    config = HubConfig(data_dir=data_dir / "hub")
    passwords = {name: secrets.token_urlsafe(12) for name in (OWNER, MODELLER)}
    console.print("[bold]1.[/bold] Starting a hub on SQLite in", config.data_dir)
    await asyncio.to_thread(_create_users, config, passwords)
    figures: dict[str, Any] = {}
    async with running_hub(config) as url:
        console.print(f"   Hub listening on {url}")
        console.print(f"[bold]2.[/bold] Users {OWNER} (pod owner) and {MODELLER} (modeller)")
        keys = await _api_keys(url, passwords)
        console.print("[bold]3.[/bold] Three pods on non-IID shares of census-income (by race)")
        async with _running_pods(url, keys[OWNER], data_dir, console) as pods:
            async with HubClient(url, token=keys[OWNER]) as alice:
                statuses = {pod: (await alice.get_pod(pod)).status for pod in pods}
            console.print("   " + ", ".join(f"{p} {s}" for p, s in statuses.items()))
            modeller_keys = data_dir / "modeller-keys"
            signing = (await asyncio.to_thread(load_or_create_pod_keys, modeller_keys)).signing
            bob = Modeller(url, token=keys[MODELLER], signing=signing)
            results = data_dir / "results"
            figures.update(pods=pods, statuses=statuses)
            figures.update(
                await _sql_steps(
                    console, url=url, keys=keys, bob=bob, pods=pods, out=results / "sql"
                )
            )
            figures.update(
                await _statistics_step(console, bob, pods, data_dir, results / "statistics")
            )
            if train:
                figures.update(await _training_step(console, bob, pods, results / "training"))
            step = 8 if train else 7
            console.print(f"[bold]{step}.[/bold] Results (tables and manifests) in {results}")
            figures["results"] = str(results)
    console.print(
        "Pods and hub stopped. Run your own: podium hub serve, podium run-pod, podium run-task"
    )
    return figures


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as tmp:
        yield Path(tmp)


def run_demo(
    console: Console, *, data_dir: Path | None = None, train: bool = False
) -> dict[str, Any]:
    """Run the demo (the CLI's edge: it owns the event loop); the figures it printed.
    ``train`` adds federated training (it needs the ``ml`` extra)."""
    if train:
        try:
            import torch  # noqa: F401 - only checking it is there
        except ImportError:
            raise ConfigError(
                "podium demo --train needs PyTorch: pip install 'podium[ml]' (make setup "
                "installs it)"
            ) from None
    with _data_dir(data_dir) as folder:
        return asyncio.run(_demo(console, folder, train))
