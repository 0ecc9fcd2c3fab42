"""``podium run-task TASK.yaml``: send a task to pods and write what comes back.

The command-line edge of :class:`podium.modeller.Modeller`:

1. reads the task file (Bitfount's modeller config: ``pods.identifiers``, ``task:
   {protocol, algorithm, ...}`` and the run options; see docs/tasks.md) and rebuilds the
   task from Podium's registries, so a misspelt algorithm or argument is an error here,
   before anything is sent;
2. finds the hub (``--hub``, the file's ``hub.url``, ``$PODIUM_HUB``, the last login) and
   a credential (``$PODIUM_API_KEY``, else the saved ``podium login``);
3. runs the task, showing each pod's phase and batch while it runs;
4. writes each algorithm's tables per pod and combined, and ``manifest.json``, under
   ``--out`` (default ``podium-results/<task id>``), prints the combined tables (or, with
   ``--json``, everything as one JSON document) and exits 0 when at least one pod
   completed the task, 7 (``TASK``) when none did.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from rich.console import Console
from rich.table import Table

from podium.core.errors import ConfigError, ExitCode, TaskDefinitionError

if TYPE_CHECKING:
    from podium.hub.client import HubClient
    from podium.modeller import Modeller
    from podium.protocols.coordinator import PodState, TaskOutcome

__all__ = ["run_task"]

_log = logging.getLogger("podium.cli")
_MAX_ROWS_SHOWN = 20


def _modeller(hub_option: str | None, file_hub: str | None, task_path: Path) -> Modeller:
    from podium.cli._hub_session import hub_client, hub_target
    from podium.modeller import Modeller

    target = hub_target(hub_option or file_hub)
    if target.api_key:
        return Modeller(target.url, token=target.api_key)
    if target.login is None:
        raise ConfigError(
            f"{task_path}: running a task needs a credential for {target.url}: "
            f"`podium login --hub {target.url}`, or an API key in PODIUM_API_KEY"
        )
    login: Callable[[], HubClient] = lambda: hub_client(target)  # noqa: E731
    return Modeller(target.url, client=login)


def _frame_table(title: str, frame: pd.DataFrame) -> Table:
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(
            str(column), justify="right" if frame[column].dtype.kind in "iuf" else "left"
        )
    for row in frame.head(_MAX_ROWS_SHOWN).itertuples(index=False):
        table.add_row(*[f"{v:.6g}" if isinstance(v, float) else str(v) for v in row])
    if len(frame) > _MAX_ROWS_SHOWN:
        table.caption = f"{len(frame) - _MAX_ROWS_SHOWN} more rows in the files"
    return table


def _pods_table(outcome: TaskOutcome) -> Table:
    table = Table(title=f"Task {outcome.task_id} ({outcome.seconds:.2f} s)", title_justify="left")
    for column in ("pod", "outcome", "batches", "seconds", "reason"):
        table.add_column(column)
    for pod, state in outcome.pods.items():
        seconds = f"{state.ended - state.started:.2f}" if state.ended else ""
        batches = (
            "" if state.batches is None else "streamed" if state.batches < 0 else str(state.batches)
        )
        table.add_row(pod, state.outcome or "", batches, seconds, state.reason or "")
    return table


class _Progress:
    """Each pod's phase and batch, as a live status line on stderr."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status = console.status("Sending the task ...")
        self._ended: set[str] = set()

    def __enter__(self) -> _Progress:
        self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._status.__exit__(None, None, None)

    def changed(self, state: PodState, every: dict[str, PodState]) -> None:
        parts = []
        for pod, pod_state in every.items():
            batch = f" batch {pod_state.batch}" if pod_state.batch is not None else ""
            parts.append(f"{pod}: {pod_state.phase}{batch}")
        self._status.update(" | ".join(parts))
        if state.outcome is not None and state.pod not in self._ended:
            self._ended.add(state.pod)
            self._console.print(
                f"{state.pod}: {state.outcome}" + (f" ({state.reason})" if state.reason else "")
            )


def run_task(
    task_path: Path,
    *,
    hub_option: str | None,
    out: Path | None,
    as_json: bool,
    fmt: Literal["csv", "parquet"],
    stdout: Console,
    stderr: Console,
) -> int:
    """Run the task of ``task_path``; the exit code (see the module docstring)."""
    from podium.config.task import load_task_config
    from podium.modeller.results import results_json, write_results
    from podium.modeller.saved_model import apply_saved_model, attach_weights
    from podium.protocols.coordinator import TaskProgress
    from podium.protocols.registry import protocol_from_definition

    config = load_task_config(task_path)
    definition, weights = apply_saved_model(config.task_definition(), base=task_path.parent)
    try:
        factory = protocol_from_definition(definition)
        if weights is not None:
            attach_weights(factory, weights)
    except TaskDefinitionError as error:
        raise TaskDefinitionError(f"{task_path}: task: {error}") from None
    taken = {key for algorithm in factory.algorithms for key in algorithm.task_level}
    ignored = [
        key
        for key in ("data_structure", "aggregator", "model")
        if key in definition and key not in taken
    ]
    if ignored:
        stderr.print(
            f"note: {', '.join(ignored)} is not used by {factory.name} with these algorithms"
        )
    modeller = _modeller(hub_option, config.hub.url if config.hub else None, task_path)
    with _Progress(stderr) as shown:

        def changed(state: PodState) -> None:
            shown.changed(state, progress.pods)

        progress = TaskProgress(changed, stderr.print)
        outcome = asyncio.run(
            modeller.run_async(
                factory,
                config.pods.identifiers,
                options=config.run_options(),
                progress=progress,
            )
        )
    folder = out if out is not None else Path("podium-results") / outcome.task_id
    manifest = write_results(outcome, factory, folder, fmt=fmt)
    if as_json:
        document = results_json(outcome, factory)
        document["manifest"] = str(manifest)
        stdout.print_json(json.dumps(document, default=str))
    else:
        stdout.print(_pods_table(outcome))
        training = getattr(outcome.result, "test_combined", None)
        if training is not None:
            line = ", ".join(f"{k} {v:.4f}" for k, v in training.items() if k != "count")
            stdout.print(f"Test metrics over all pods: {line}")
            stdout.print(f"Model, card and plot in {folder}")
        combined = getattr(outcome.result, "combined", ())
        for algorithm, table in zip(factory.algorithms, combined, strict=False):
            frame = getattr(table, "combined", None)
            if isinstance(frame, pd.DataFrame):
                stdout.print(_frame_table(f"{algorithm.name}: all pods", frame))
        stdout.print(f"Results written to {folder} (manifest: {manifest.name})")
    return int(ExitCode.OK if outcome.completed else ExitCode.TASK)
