"""``podium run-pod`` as a real process against ``podium hub serve`` on a real port: the
census pod registers, shows online, answers a modeller's sealed request over the relay,
stops cleanly on Ctrl-C (offline soon after), and is the same pod when restarted."""

from __future__ import annotations

import asyncio
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from podium.core.crypto import SessionKey, SessionOpener, SigningKeyPair
from podium.core.crypto.encoding import b64url_decode
from podium.core.messages import (
    Envelope,
    JobRequest,
    MessageType,
    Signal,
    decode_payload,
    new_task_id,
    pod_mailbox,
    seal_job_request,
    task_mailbox,
)
from podium.hub.client import HubClient
from podium.hub.config import HubConfig
from podium.hub.models import utcnow
from podium.hub.services import HubServices
from podium.transport import WebSocketTransport
from tests.hub.conftest import FAST_PASSWORDS, PASSWORD
from tests.integration.test_hub_serve import _environ, running_hub

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "census-income.yaml"
POD_ID = "alice/census-income"
WAIT_S = 60.0


def _seed(data_dir: Path) -> dict[str, str]:
    """alice (the pod's owner) and bob (a modeller), each with an API key."""
    services = HubServices.open(HubConfig(data_dir=data_dir, password_cost=FAST_PASSWORDS))
    try:
        now = services.now()
        keys = {}
        for name in ("alice", "bob"):
            services.accounts.create_user(name, PASSWORD, is_admin=False, now=now)
            keys[name] = services.accounts.create_api_key(name, "run-pod test", now)[1]
        return keys
    finally:
        services.close()


@contextmanager
def running_pod(
    env: dict[str, str], hub_url: str, config: Path = CONFIG, pod_id: str = POD_ID
) -> Iterator[subprocess.Popen[str]]:
    """``podium run-pod CONFIG --hub URL`` until its ready line; Ctrl-C afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "podium", "run-pod", str(config), "--hub", hub_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], WAIT_S)
        line = process.stdout.readline() if ready else ""
        if not line.startswith(f"Pod {pod_id} is online at {hub_url}"):
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"the pod did not come online: {line!r}\n{err}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        process.stdout_rest = out  # type: ignore[attr-defined]
        process.stderr_all = err  # type: ignore[attr-defined]


async def _status(url: str, key: str) -> tuple[str, list[str]]:
    async with HubClient(url, token=key) as client:
        pod = await client.get_pod(POD_ID)
        return pod.status, sorted(k.key_id for k in pod.keys)


async def _modeller_asks(url: str, bob_key: str) -> MessageType:
    """bob registers a signing key, looks up the pod's encryption key on the hub, and
    sends a sealed, signed request; the pod's answer's type (opened with his key)."""
    signing = SigningKeyPair.generate()
    async with HubClient(url, token=bob_key) as bob:
        await bob.register_key("bob", "signing", signing.public_b64)
        (encryption,) = await bob.list_keys(POD_ID, purpose="encryption")
    session, task_id = SessionKey.generate(), new_task_id()
    record = JobRequest.build(
        signing,
        modeller="bob",
        pod_id=POD_ID,
        task={
            "protocol": {"name": "ResultsOnly"},
            "algorithm": {
                "name": "SqlQuery",
                "arguments": {"query": 'SELECT COUNT(*) FROM "census-income"'},
            },
        },
        session_key=session,
        task_id=task_id,
        now=utcnow(),
    )
    request = Envelope(
        type=MessageType.JOB_REQUEST,
        task_id=task_id,
        sender="bob",
        recipient=pod_mailbox("alice", "census-income"),
        seq=0,
        sent_at=time.time(),
        body=seal_job_request(record, b64url_decode(encryption.public_key), pod_id=POD_ID),
    )
    async with WebSocketTransport(url, bob_key).connect([task_mailbox(task_id, "bob")]) as conn:
        await conn.send(request)
        answer = await conn.receive()
        await conn.ack(answer)
    if answer.type is MessageType.JOB_ACCEPT:
        plain = SessionOpener(session, task_id, "alice.census-income").open(
            answer.seq, answer.body, final=False
        )
        assert plain[:1] == b"\x00"  # the whole record in one message
        assert decode_payload(MessageType.JOB_ACCEPT, plain[2:]) == Signal()
    return answer.type


async def _grant(url: str, alice_key: str) -> None:
    async with HubClient(url, token=alice_key) as alice:
        await alice.grant(POD_ID, "bob", "general-modeller")


async def _offline_within(url: str, key: str, seconds: float) -> float:
    started = time.monotonic()
    while (await _status(url, key))[0] != "offline":
        assert time.monotonic() - started < seconds, "the pod still shows online"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def test_run_pod_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    keys = _seed(data_dir)
    hub_env = _environ(tmp_path / "hub-home")
    pod_env = {**_environ(tmp_path / "pod-home"), "PODIUM_API_KEY": keys["alice"]}
    with running_hub(hub_env, "--data-dir", str(data_dir), "--heartbeat-interval", "0.5") as hub:
        with running_pod(pod_env, hub.url) as pod:
            status, first_keys = asyncio.run(_status(hub.url, keys["alice"]))
            assert status == "online"
            assert len(first_keys) == 2
            assert asyncio.run(_modeller_asks(hub.url, keys["bob"])) is MessageType.JOB_REJECT
            asyncio.run(_grant(hub.url, keys["alice"]))
            assert asyncio.run(_modeller_asks(hub.url, keys["bob"])) is MessageType.JOB_ACCEPT
        assert pod.returncode == 0, pod.stderr_all  # type: ignore[attr-defined]
        assert f"Pod {POD_ID} stopped" in pod.stdout_rest  # type: ignore[attr-defined]
        assert "Traceback" not in pod.stderr_all  # type: ignore[attr-defined]
        assert asyncio.run(_offline_within(hub.url, keys["alice"], 30)) < 30
        with running_pod(pod_env, hub.url):
            status, again_keys = asyncio.run(_status(hub.url, keys["alice"]))
            assert (status, again_keys) == ("online", first_keys)  # the same pod
    audit = tmp_path / "pod-home" / "pods" / "alice" / "census-income" / "pod.db"
    assert audit.stat().st_mode & 0o077 == 0


def test_run_pod_with_a_saved_login(tmp_path: Path) -> None:
    """Without an API key the pod runs on the owner's `podium login`, whose tokens the
    pod refreshes, and answers over the relay all the same."""
    data_dir = tmp_path / "hub"
    keys = _seed(data_dir)
    hub_env = _environ(tmp_path / "hub-home")
    pod_env = _environ(tmp_path / "pod-home")
    with running_hub(hub_env, "--data-dir", str(data_dir)) as hub:
        login = subprocess.run(
            [sys.executable, "-m", "podium", "login", "--hub", hub.url, "--username", "alice",
             "--password-stdin"],
            input=PASSWORD + "\n", capture_output=True, text=True, env=pod_env, timeout=60,
            check=False,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        with running_pod(pod_env, hub.url) as pod:
            asyncio.run(_grant(hub.url, keys["alice"]))
            assert asyncio.run(_modeller_asks(hub.url, keys["bob"])) is MessageType.JOB_ACCEPT
        assert pod.returncode == 0, pod.stderr_all  # type: ignore[attr-defined]
