"""``podium demo``: a hub on the embedded default, the census pod registered with it, and
the access manager at work, on one machine in a few seconds.

What it does, step by step (each step is printed):

1. starts a hub on a free loopback port over a fresh SQLite file (a temporary folder, or
   ``--data-dir``), exactly as ``podium hub serve`` would;
2. creates the pod owner ``alice`` and the modeller ``bob``; alice logs in and makes an
   API key for her pod;
3. reads the census-income pod config, infers the schema from the data (which stays on
   this machine: only the schema goes to the hub), creates the pod's Ed25519 and X25519
   keys (private halves in files with mode 0600) and registers the pod with its public keys;
4. sends a heartbeat, so the pod shows online;
5. asks the access manager three times as the pod would: bob without a grant (refused),
   then with the ``general-modeller`` preset (SQL accepted, private SQL refused);
6. prints the registry and the audit log, then stops the hub.

Later releases extend it with the pod runtime and a modeller's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console

from podium.hub.client import HubClient
from podium.hub.config import HubConfig
from podium.hub.schemas import DecisionIn, DecisionOut, PodIn
from podium.pod.keys import PodKeys, load_or_create_pod_keys
from podium.pod.pod import registration

__all__ = ["run_demo"]

CENSUS_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "census-income.yaml"
OWNER, MODELLER = "alice", "bob"


def census_registration(config_path: Path, keys: PodKeys) -> tuple[str, PodIn]:
    """The census pod's name and registration: details and schema from its config."""
    from podium.config import build_datasources, load_pod_config
    from podium.data.schema import infer_schema, normalize_force_stypes

    pod_config = load_pod_config(config_path)
    sources = build_datasources(pod_config)
    container = pod_config.containers()[0]
    schema = infer_schema(
        sources[container.name],
        name=container.name,
        force_stypes=normalize_force_stypes(container.data_config.force_stypes, container.name),
        description=container.description(),
    )
    keys_of_pod = {
        "signing_key": keys.signing.public_b64,
        "encryption_key": keys.encryption.public_b64,
    }
    details = pod_config.pod_details_config
    described = registration(pod_config.name, details, schema)
    return pod_config.name, described.model_copy(update=keys_of_pod)


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


def _decision_line(who: str, algorithm: str, answer: DecisionOut) -> str:
    mark = "[green]ACCEPT[/green]" if answer.decision == "ACCEPT" else "[red]REFUSE[/red]"
    why = f" ({answer.reason}: {answer.message})" if answer.reason else f" (via {answer.via})"
    return f"  {who} runs {algorithm}: {mark}{why}"


async def _demo(console: Console, data_dir: Path, config_path: Path) -> dict[str, Any]:
    config = HubConfig(data_dir=data_dir / "hub")
    passwords = {name: secrets.token_urlsafe(12) for name in (OWNER, MODELLER)}
    console.print("[bold]1.[/bold] Starting a hub on SQLite in", config.data_dir)
    await asyncio.to_thread(_create_users, config, passwords)
    async with running_hub(config) as url:
        console.print(f"   Hub listening on {url}")
        console.print(f"[bold]2.[/bold] Users {OWNER} (pod owner) and {MODELLER} (modeller)")
        async with HubClient(url) as anonymous:
            token = await anonymous.login_password(OWNER, passwords[OWNER])
        async with HubClient(url, token=token.access_token) as alice_session:
            api_key = (await alice_session.create_api_key("census-pod")).key
        console.print(f"[bold]3.[/bold] Inferring the schema of {config_path.name}")
        keys = await asyncio.to_thread(load_or_create_pod_keys, data_dir / "pod-keys")
        name, registration = await asyncio.to_thread(census_registration, config_path, keys)
        pod_id = f"{OWNER}/{name}"
        async with HubClient(url, token=api_key) as pod:
            registered = await pod.register_pod(pod_id, registration)
            console.print(
                f"   Registered {pod_id}: {len(registration.schema_.get('columns', []))} "
                f"columns, {registered.number_of_records} records, "
                f"{len(registered.keys)} public keys"
            )
            await pod.heartbeat(pod_id)
            status = (await pod.get_pod(pod_id)).status
            console.print(f"[bold]4.[/bold] Heartbeat sent: {pod_id} is {status}")
            console.print("[bold]5.[/bold] The pod asks the access manager")
            task_hash = hashlib.sha256(b"SELECT COUNT(*) FROM census").hexdigest()
            answers = []
            for algorithm, grant in (
                ("SqlQuery", None),
                ("SqlQuery", "general-modeller"),
                ("PrivateSqlQuery", None),
            ):
                if grant is not None:
                    await pod.grant(pod_id, MODELLER, grant)
                    console.print(f"  {OWNER} grants {MODELLER} the {grant} preset")
                answer = await pod.decide(
                    DecisionIn(
                        modeller=MODELLER,
                        pod=pod_id,
                        protocol="ResultsOnly",
                        algorithms=[algorithm],
                        task_hash=task_hash,
                    )
                )
                answers.append(answer)
                console.print(_decision_line(MODELLER, algorithm, answer))
            events = (await pod.audit(pod_id=pod_id)).events
            console.print(f"[bold]6.[/bold] Audit log of {pod_id}: {len(events)} events")
            for event in reversed(events):
                what = event.detail.get("role") or " ".join(event.detail.get("algorithms", []))
                console.print(
                    f"  #{event.event_id} {event.actor} {event.action} {what} "
                    f"for {event.subject or '-'}: {event.outcome}"
                )
    console.print("Hub stopped. Run your own: podium hub serve")
    return {
        "pod": pod_id,
        "status": status,
        "decisions": [a.decision for a in answers],
        "audit_events": len(events),
    }


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as tmp:
        yield Path(tmp)


def _census_config(folder: Path) -> Path:
    """The census-income example config of a checkout, or one written beside its CSV
    (an installed Podium has no ``examples/`` folder)."""
    if CENSUS_CONFIG.is_file():
        return CENSUS_CONFIG
    from podium.data.census import write_census_pods

    return write_census_pods(folder / "pods", 1, prefix="census-income")[0].config


def run_demo(
    console: Console, *, data_dir: Path | None = None, config_path: Path | None = None
) -> dict[str, Any]:
    """Run the demo (the CLI's edge: it owns the event loop); the figures it printed."""
    with _data_dir(data_dir) as folder:
        config = config_path or _census_config(folder)
        return asyncio.run(_demo(console, folder, config))
