"""The ``podium`` command: thin commands over the library.

Errors Podium raises on purpose print as one line on stderr and exit with the code of
:class:`podium.core.errors.ExitCode`; anything else prints one line too and exits 1.
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from podium._version import __version__
from podium.cli import account_commands, hub_commands, pod_commands, project_commands
from podium.cli._render import render_schema
from podium.core.errors import DataSourceNotFoundError, ExitCode, PodiumError

if TYPE_CHECKING:
    from podium.config.models import PodConfig
    from podium.data.schema import Schema

__all__ = ["app", "main"]

app = typer.Typer(
    name="podium",
    help="Podium: federated analytics and learning on data that never leaves its owner.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_out = Console()
_err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        _out.print(f"podium {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
) -> None:
    """Podium: federated analytics and learning on data that never leaves its owner."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


ConfigArg = Annotated[Path, typer.Argument(help="The pod's YAML config file.")]
HubUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--hub",
        metavar="URL",
        help="The hub's URL [default: the config's hub.url, then $PODIUM_HUB, then the hub "
        "of the last login].",
    ),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        metavar="FILE",
        help="The pod's local policy (YAML, see docs/pod-policy.md) [default: none].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _run_pod(
    config: Path, hub: str | None, dry_run: bool, as_json: bool, policy: Path | None = None
) -> None:
    from podium.config import load_pod_config

    if not dry_run:
        from podium.cli.run_pod import serve_pod

        serve_pod(config, hub, policy, announce=_out.print)
        return
    pod_config = load_pod_config(config)
    schemas = _schemas(pod_config, config)
    if as_json:
        payload = {"pod": pod_config.name, "schemas": [s.to_dict() for s in schemas]}
        _out.print_json(json.dumps(payload))
        return
    _out.print(f"Pod [bold]{pod_config.name}[/bold]: config is valid, {len(schemas)} source(s).")
    for schema in schemas:
        render_schema(_out, schema)


def _schemas(pod_config: PodConfig, config: Path) -> list[Schema]:
    """Open every datasource of the pod and infer its schema (a saved one is ignored)."""
    from podium.cli.run_pod import pod_containers
    from podium.pod.pod import source_schema

    hide = pod_config.differential_privacy is not None
    schemas = []
    for container in pod_containers(pod_config, config):
        with (
            _err.status(f"Inferring the schema of {container.name} ..."),
            _naming(f"{config}: datasource {container.name!r}"),
        ):
            schemas.append(source_schema(container, hide_record_count=hide, update=True))
    return schemas


@contextmanager
def _naming(where: str) -> Iterator[None]:
    """Prefix ``where`` to a PodiumError's message, so a multi-source pod says which."""
    try:
        yield
    except PodiumError as exc:
        message = str(exc)
        if message.startswith(where):
            raise
        raise type(exc)(f"{where}: {message}") from exc


@app.command("run-pod")
def run_pod(
    config: ConfigArg,
    hub: HubUrlOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Validate the config, open every source, print each schema; contact no hub.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    policy: PolicyOpt = None,
) -> None:
    """Run a pod from its YAML config (Bitfount's pod config format is accepted) until
    Ctrl-C; with --dry-run, only check the config and print the schema."""
    _run_pod(config, hub, dry_run, as_json, policy)


@app.command("run_pod", hidden=True)
def run_pod_alias(
    config: ConfigArg,
    hub: HubUrlOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    as_json: JsonOpt = False,
    policy: PolicyOpt = None,
) -> None:
    """Alias of run-pod, as Bitfount spells it."""
    _run_pod(config, hub, dry_run, as_json, policy)


TaskArg = Annotated[Path, typer.Argument(help="The task's YAML file (Bitfount's modeller config).")]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Where to write the results [default: podium-results/<task id>].",
    ),
]
FormatOpt = Annotated[
    str,
    typer.Option("--format", help="File format of the result tables: csv or parquet."),
]


def _run_task(task: Path, hub: str | None, out: Path | None, as_json: bool, fmt: str) -> None:
    from podium.cli.run_task import run_task
    from podium.core.errors import ConfigError

    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"--format must be csv or parquet, not {fmt!r}")
    code = run_task(
        task,
        hub_option=hub,
        out=out,
        as_json=as_json,
        fmt="csv" if fmt == "csv" else "parquet",
        stdout=_out,
        stderr=_err,
    )
    if code:
        raise typer.Exit(code)


@app.command("run-task")
def run_task_command(
    task: TaskArg,
    hub: HubUrlOpt = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "csv",
) -> None:
    """Send a task to pods, show their progress, and write the results (tables per pod and
    combined, and a manifest). Exits 7 when no pod completed the task."""
    _run_task(task, hub, out, as_json, fmt)


@app.command("run_modeller", hidden=True)
def run_modeller_alias(
    task: TaskArg,
    hub: HubUrlOpt = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "csv",
) -> None:
    """Alias of run-task, as Bitfount spells it."""
    _run_task(task, hub, out, as_json, fmt)


@app.command("demo")
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Keep the demo hub's database, keys and pod keys here (default: a "
            "temporary folder, removed at the end).",
        ),
    ] = None,
    train: Annotated[
        bool,
        typer.Option(
            "--train",
            help="Also train a model across the pods with federated averaging (needs the "
            "ml extra).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a federation on this machine: a hub on SQLite, three census pods, and a
    modeller's SQL query and statistics (and with --train, federated training) across
    them; then stop everything."""
    from podium.cli.demo import run_demo

    console = Console(stderr=True) if as_json else _out
    figures = run_demo(console, data_dir=data_dir, train=train)
    if as_json:
        _out.print_json(json.dumps(figures))


@app.command("schema")
def schema_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A .csv, .csv.gz, .tsv, .parquet, .pq, .xlsx or .xlsm file, or a folder "
            "of .parquet files."
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="The table name (default: the file name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the inferred schema of a CSV, Parquet or Excel file."""
    from podium.data.schema import infer_schema
    from podium.data.sources.registry import source_for_file

    if not path.exists():
        raise DataSourceNotFoundError(
            f"{path}: no such file or folder. Give the path of a CSV, Parquet or Excel file, "
            "or of a folder of Parquet files."
        )
    source = source_for_file(path)
    schema = infer_schema(source, name=name or _table_name(path))
    if as_json:
        _out.print_json(schema.to_json())
    else:
        render_schema(_out, schema)


census_app = typer.Typer(
    help="The census-income data set shipped with Podium (UCI Adult, CC BY 4.0).",
    no_args_is_help=True,
)
app.add_typer(census_app, name="census")


@census_app.command("split")
def census_split(
    out: Annotated[Path, typer.Argument(help="Folder for the pods' CSVs and configs.")],
    pods: Annotated[int, typer.Option(min=1, help="How many pods.")] = 3,
    by: Annotated[
        str | None,
        typer.Option(help="Split non-IID by this column (each value to one pod); IID if unset."),
    ] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same shares.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Split the census data into pod shares: a CSV and a pod config per pod."""
    from podium.data.census import write_census_pods

    written = write_census_pods(out, pods, by=by, seed=seed)
    if as_json:
        rows = [
            {"name": p.name, "rows": p.rows, "csv": str(p.csv), "config": str(p.config)}
            for p in written
        ]
        _out.print_json(json.dumps({"pods": rows}))
        return
    for pod in written:
        _out.print(f"{pod.name}: {pod.rows:,} rows  {pod.config}")
    _out.print(f"Check one with: podium run-pod {written[0].config} --dry-run")


app.add_typer(hub_commands.hub_app, name="hub")
app.command("login")(account_commands.login)
app.command("logout")(account_commands.logout)
app.command("whoami")(account_commands.whoami)
app.add_typer(account_commands.api_key_app, name="api-key")
app.add_typer(pod_commands.pods_app, name="pods")
app.add_typer(pod_commands.access_app, name="access")
app.add_typer(project_commands.projects_app, name="projects")


def _table_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm"):
        name = name.removesuffix(suffix)
    return name


def _fail(message: str) -> None:
    """Write a message to stderr as it is: no markup, no wrapping at the terminal width."""
    sys.stderr.write(message.rstrip() + "\n")
    sys.stderr.flush()


def main() -> None:
    """Entry point of the ``podium`` script."""
    debug = "--debug" in sys.argv[1:]
    try:
        app(prog_name="podium")
    except PodiumError as exc:
        if debug:
            raise
        _fail(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _fail("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except RuntimeError as exc:
        # DuckDB turns Ctrl-C during a query into RuntimeError("Query interrupted").
        if debug or "interrupted" not in str(exc).lower():
            raise
        _fail("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the process boundary: translate, never dump
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(int(ExitCode.INTERNAL))
