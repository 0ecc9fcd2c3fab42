"""The hub commands of ``podium``, run through ``main()`` against a hub app in-process
(``SEAM.transport``), with ``PODIUM_HOME`` in a temporary folder."""

from __future__ import annotations

import io
import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from podium.cli._hub_session import SEAM
from podium.cli.app import main
from podium.core.errors import ExitCode
from podium.hub.accounts import Principal
from podium.hub.app import create_app
from podium.hub.errors import HubError
from podium.hub.registry import PodRegistration
from podium.hub.services import HubServices
from tests.hub.conftest import PASSWORD, Clock, make_services

HUB = "http://hub.test"
SCHEMA = {
    "name": "census",
    "num_records": 32561,
    "columns": [
        {"name": "age", "stype": "continuous", "dtype": "integer", "missing": 0},
        {"name": "race", "stype": "categorical", "dtype": "string", "values": ["a", "b"]},
    ],
}
TASK_HASH = "0123456789abcdef" * 2


@dataclass
class Result:
    """What one run of ``podium`` did."""

    code: int
    out: str
    err: str


@pytest.fixture
def clock() -> Clock:
    """The hub's clock, moved by hand."""
    return Clock()


@pytest.fixture
def services(tmp_path: Path, clock: Clock) -> HubServices:
    """An in-memory hub with users alice (owner), bob (modeller) and root (admin)."""
    hub = make_services(tmp_path, clock)
    for name in ("alice", "bob", "root"):
        hub.accounts.create_user(name, PASSWORD, is_admin=name == "root", now=clock())
    return hub


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services: HubServices) -> Path:
    """PODIUM_HOME in a temporary folder, no PODIUM_HUB or PODIUM_API_KEY, and the CLI's
    HTTP calls routed into the hub app."""
    folder = tmp_path / "home"
    monkeypatch.setenv("PODIUM_HOME", str(folder))
    monkeypatch.delenv("PODIUM_HUB", raising=False)
    monkeypatch.delenv("PODIUM_API_KEY", raising=False)
    monkeypatch.setattr(SEAM, "transport", httpx.ASGITransport(app=create_app(services)))
    return folder


@pytest.fixture
def podium(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> PodiumRunner:
    """Runs ``podium ARGS`` in-process, as the script does."""
    return PodiumRunner(monkeypatch, capsys)


class PodiumRunner:
    """Calls ``main()`` with argv and stdin set, and captures what it wrote."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(self, *args: str, stdin: str = "") -> Result:
        self._capsys.readouterr()
        self._monkeypatch.setattr(sys, "argv", ["podium", *args])
        self._monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exited:
            main()
        captured = self._capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.err)

    def login(self, name: str = "alice") -> Result:
        result = self("login", "--hub", HUB, "--username", name, "--password-stdin", stdin=PASSWORD)
        assert result.code == 0, result.err
        return result


def _one_error_line(result: Result, code: ExitCode) -> str:
    """The run failed with ``code`` and one ``error:`` line on stderr, no traceback."""
    assert result.code == code, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    return lines[0]


def _saved(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "credentials.json").read_text())
    return data


def _register(
    services: HubServices, pod_id: str = "alice/census", description: str = "Adults and income."
) -> None:
    owner, name = pod_id.split("/")
    services.registry.register_pod(
        Principal(owner, False, "token"),
        owner,
        name,
        PodRegistration(
            display_name="Census income",
            description=description,
            schema=SCHEMA,
            schema_hash="42a54f6606c7",
            number_of_records=32561,
        ),
        services.now(),
    )


# -- login, hub resolution, credentials -----------------------------------------------


def test_password_login_saves_credentials_owner_only(podium: PodiumRunner, home: Path) -> None:
    """``login --username --password-stdin`` saves the tokens with mode 0600, hub current."""
    result = podium.login()
    assert result.out.strip() == f"Logged in to {HUB} as alice."
    path = home / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = _saved(home)
    assert saved["current"] == HUB
    assert saved["hubs"][HUB]["username"] == "alice"  # type: ignore[index]
    assert PASSWORD not in path.read_text()


def test_wrong_password_is_one_line(podium: PodiumRunner, home: Path) -> None:
    """A wrong password exits 5 with the hub's message and saves nothing."""
    result = podium(
        "login", "--hub", HUB, "--username", "alice", "--password-stdin", stdin="wrong pass"
    )
    assert _one_error_line(result, ExitCode.HUB) == "error: Wrong user name or password."
    assert not (home / "credentials.json").exists()


def test_password_stdin_must_hold_a_line(podium: PodiumRunner) -> None:
    """An empty stdin with --password-stdin is a usage error (exit 2)."""
    result = podium("login", "--hub", HUB, "--username", "alice", "--password-stdin")
    assert "stdin held no password" in _one_error_line(result, ExitCode.CONFIG)


def test_password_needs_a_terminal_or_stdin(podium: PodiumRunner) -> None:
    """With --username but no terminal and no --password-stdin, exit 2 and say so."""
    result = podium("login", "--hub", HUB, "--username", "alice")
    assert "--password-stdin" in _one_error_line(result, ExitCode.CONFIG)


def test_password_stdin_needs_username(podium: PodiumRunner) -> None:
    """--password-stdin alone is refused: the device flow takes no password."""
    result = podium("login", "--hub", HUB, "--password-stdin", stdin=PASSWORD)
    assert "--username" in _one_error_line(result, ExitCode.CONFIG)


def test_commands_use_the_hub_of_the_last_login(podium: PodiumRunner) -> None:
    """After a login, commands without --hub talk to that hub."""
    podium.login()
    result = podium("whoami")
    assert result.code == 0, result.err
    assert result.out.strip() == f"alice on {HUB}"


def test_hub_option_beats_env_beats_last_login(
    podium: PodiumRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--hub wins over PODIUM_HUB, which wins over the last login's hub."""
    podium.login()
    monkeypatch.setenv("PODIUM_HUB", "http://other.test/")
    from_env = podium("whoami")
    assert "Not logged in to http://other.test" in _one_error_line(from_env, ExitCode.HUB)
    from_option = podium("whoami", "--hub", HUB + "/")
    assert from_option.code == 0, from_option.err


def test_no_hub_anywhere_says_how_to_set_one(podium: PodiumRunner) -> None:
    """No --hub, no PODIUM_HUB and no login: exit 2 naming the three ways."""
    line = _one_error_line(podium("pods", "list"), ExitCode.CONFIG)
    assert "--hub URL" in line
    assert "PODIUM_HUB" in line
    assert "podium login" in line


def test_malformed_hub_url(podium: PodiumRunner) -> None:
    """A hub URL that is not http(s) is a usage error."""
    result = podium("whoami", "--hub", "hub.test:8700")
    assert "is not a hub URL" in _one_error_line(result, ExitCode.CONFIG)


def test_not_logged_in_says_how_to_log_in(podium: PodiumRunner) -> None:
    """A command on a hub without a login exits 5 with the login command to run."""
    line = _one_error_line(podium("pods", "list", "--hub", HUB), ExitCode.HUB)
    assert f"podium login --hub {HUB}" in line
    assert "PODIUM_API_KEY" in line


def test_api_key_from_the_environment(
    podium: PodiumRunner, services: HubServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PODIUM_API_KEY serves as the credential, with no login at all."""
    _, key = services.accounts.create_api_key("bob", "automation", services.now())
    monkeypatch.setenv("PODIUM_API_KEY", key)
    monkeypatch.setenv("PODIUM_HUB", HUB)
    result = podium("whoami", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "hub": HUB,
        "name": "bob",
        "is_admin": False,
        "via": "api-key",
    }


def test_bad_api_key_hints_at_the_variable(
    podium: PodiumRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused PODIUM_API_KEY exits 5 and names the variable."""
    monkeypatch.setenv("PODIUM_API_KEY", "pdm_0123456789ab_not-the-secret")
    line = _one_error_line(podium("whoami", "--hub", HUB), ExitCode.HUB)
    assert "PODIUM_API_KEY" in line


def test_expired_token_is_refreshed_and_saved(
    podium: PodiumRunner, home: Path, clock: Clock, services: HubServices
) -> None:
    """An expired access token is refreshed behind the scenes and the new one saved."""
    podium.login()
    before = _saved(home)["hubs"][HUB]  # type: ignore[index]
    clock.advance(services.config.access_token_ttl_s + 1)
    assert podium("whoami").code == 0
    after = _saved(home)["hubs"][HUB]  # type: ignore[index]
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]


def test_dead_login_says_log_in_again(
    podium: PodiumRunner, home: Path, clock: Clock, services: HubServices
) -> None:
    """When the login can no longer be refreshed, exit 5 and say to log in again."""
    podium.login()
    services.accounts.revoke_refresh(_saved(home)["hubs"][HUB]["refresh_token"], clock())  # type: ignore[index]
    clock.advance(services.config.access_token_ttl_s + 1)
    line = _one_error_line(podium("whoami"), ExitCode.HUB)
    assert f"log in again with `podium login --hub {HUB}`" in line


def test_logout_revokes_and_forgets(
    podium: PodiumRunner, home: Path, services: HubServices
) -> None:
    """``logout`` revokes the refresh token on the hub and removes the saved login."""
    podium.login()
    refresh_token = _saved(home)["hubs"][HUB]["refresh_token"]  # type: ignore[index]
    result = podium("logout")
    assert result.out.strip() == f"Logged out of {HUB}."
    assert _saved(home) == {"version": 1, "current": None, "hubs": {}}
    with pytest.raises(HubError):
        services.accounts.refresh(str(refresh_token), services.now())
    assert podium("logout", "--hub", HUB).out.strip() == f"Not logged in to {HUB}."


def test_corrupt_credentials_file(podium: PodiumRunner, home: Path) -> None:
    """A damaged credentials file is a usage error that says what to do."""
    home.mkdir(parents=True)
    (home / "credentials.json").write_text("{not json")
    line = _one_error_line(podium("whoami", "--hub", HUB), ExitCode.CONFIG)
    assert "delete it" in line


def test_device_login(
    podium: PodiumRunner,
    home: Path,
    services: HubServices,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``login`` without --username shows a code and a link, and logs in once approved."""
    monkeypatch.setattr("podium.hub.accounts.new_user_code", lambda: "WXYZ-2345")
    waits: list[float] = []

    async def approve_on_second_wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
        if len(waits) == 2:
            services.accounts.decide_device_login("WXYZ-2345", "bob", approve=True, now=clock())

    monkeypatch.setattr(SEAM, "sleep", approve_on_second_wait)
    result = podium("login", "--hub", HUB)
    assert result.code == 0, result.err
    assert f"{HUB}/device?user_code=WXYZ-2345" in result.out
    assert "WXYZ-2345" in result.out
    assert result.out.strip().endswith(f"Logged in to {HUB} as bob.")
    assert len(waits) == 2
    assert _saved(home)["hubs"][HUB]["username"] == "bob"  # type: ignore[index]


def test_unreachable_hub_exits_6(podium: PodiumRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub that does not answer exits 6 with the URL and a hint."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    monkeypatch.setattr(SEAM, "transport", httpx.MockTransport(refuse))
    result = podium("login", "--hub", HUB, "--username", "a", "--password-stdin", stdin="x")
    line = _one_error_line(result, ExitCode.HUB_UNREACHABLE)
    assert f"cannot reach the hub at {HUB}" in line


# -- API keys ---------------------------------------------------------------------------


def test_api_key_create_prints_the_key_once(podium: PodiumRunner, services: HubServices) -> None:
    """The key alone goes to stdout (for scripts), the notice to stderr; list never
    shows it; revoke stops it."""
    podium.login()
    created = podium("api-key", "create", "ci")
    key = created.out.strip()
    assert key.startswith("pdm_")
    assert "not shown again" in created.err
    assert services.accounts.authenticate_bearer(key, services.now()).name == "alice"
    listed = podium("api-key", "list", "--json")
    rows = json.loads(listed.out)
    assert [r["name"] for r in rows] == ["ci"]
    assert key not in listed.out
    assert "key" not in rows[0]
    revoked = podium("api-key", "revoke", rows[0]["key_id"])
    assert revoked.code == 0
    with pytest.raises(HubError):
        services.accounts.authenticate_bearer(key, services.now())


def test_api_key_list_table(podium: PodiumRunner) -> None:
    """Without --json, the keys show as a table."""
    podium.login()
    assert "No API keys" in podium("api-key", "list").out
    podium("api-key", "create", "nightly")
    table = podium("api-key", "list").out
    assert "nightly" in table
    assert "last used" in table


def test_revoke_unknown_api_key(podium: PodiumRunner) -> None:
    """Revoking a key that is not yours exits 5."""
    podium.login()
    line = _one_error_line(podium("api-key", "revoke", "000000000000"), ExitCode.HUB)
    assert "No such API key" in line


# -- pods ------------------------------------------------------------------------------


def test_pods_list_json_and_search(podium: PodiumRunner, services: HubServices) -> None:
    """``pods list --json`` gives the pods; --search narrows them."""
    _register(services, "alice/census")
    _register(services, "alice/trials")
    podium.login()
    listed = json.loads(podium("pods", "list", "--json").out)
    assert [p["pod_id"] for p in listed["pods"]] == ["alice/census", "alice/trials"]
    assert listed["pods"][0]["schema"] == SCHEMA
    found = json.loads(podium("pods", "list", "--json", "--search", "trials").out)
    assert [p["pod_id"] for p in found["pods"]] == ["alice/trials"]


def test_pods_list_table_shows_status(
    podium: PodiumRunner, services: HubServices, clock: Clock
) -> None:
    """The table shows each pod with online or offline."""
    _register(services, "alice/census")
    _register(services, "alice/trials")
    services.registry.heartbeat(Principal("alice", False, "token"), "alice", "census", clock())
    podium.login()
    lines = podium("pods", "list").out.splitlines()
    assert any("alice/census" in line and "online" in line for line in lines)
    assert any("alice/trials" in line and "offline" in line for line in lines)


def test_pods_show_renders_the_schema(podium: PodiumRunner, services: HubServices) -> None:
    """``pods show`` prints the pod and its schema as a table of columns."""
    _register(services)
    podium.login()
    result = podium("pods", "show", "alice/census")
    assert result.code == 0, result.err
    assert "alice/census" in result.out
    assert "Adults and income." in result.out
    assert "32,561 records" in result.out
    age = next(line for line in result.out.splitlines() if " age " in line)
    assert "continuous" in age
    race = next(line for line in result.out.splitlines() if " race " in line)
    assert "a, b" in race


def test_pods_show_json(podium: PodiumRunner, services: HubServices) -> None:
    """``pods show --json`` is the hub's pod document."""
    _register(services)
    podium.login()
    shown = json.loads(podium("pods", "show", "alice/census", "--json").out)
    assert (shown["pod_id"], shown["schema"]) == ("alice/census", SCHEMA)


def test_pods_show_needs_owner_slash_name(podium: PodiumRunner) -> None:
    """A pod argument without a slash is a usage error."""
    podium.login()
    assert "OWNER/NAME" in _one_error_line(podium("pods", "show", "census"), ExitCode.CONFIG)


def test_pod_text_is_not_markup(podium: PodiumRunner, services: HubServices) -> None:
    """Rich markup in a pod's description is printed as written."""
    _register(services, "alice/odd", description="[bold red]x[/]")
    podium.login()
    assert "[bold red]x[/]" in podium("pods", "show", "alice/odd").out


# -- access ----------------------------------------------------------------------------


def test_access_grant_list_revoke(podium: PodiumRunner, services: HubServices) -> None:
    """The owner grants a preset, lists the grants, and revokes one role."""
    _register(services)
    podium.login()
    granted = podium("access", "grant", "--pod", "alice/census", "--user", "bob", "--role", "sql")
    assert granted.out.strip() == "Granted sql on alice/census to bob."
    again = podium("access", "grant", "--pod", "alice/census", "--user", "bob", "--role", "sql")
    assert "nothing changed" in again.out
    listed = json.loads(podium("access", "list", "--pod", "alice/census", "--json").out)
    assert [(g["user"], g["role"]) for g in listed] == [("bob", "sql")]
    assert "bob" in podium("access", "list", "--pod", "alice/census").out
    revoked = podium("access", "revoke", "--pod", "alice/census", "--user", "bob", "--role", "sql")
    assert revoked.out.strip() == "Revoked sql on alice/census from bob."
    assert json.loads(podium("access", "list", "--pod", "alice/census", "--json").out) == []


def test_access_list_defaults_to_your_roles(podium: PodiumRunner, services: HubServices) -> None:
    """Without --pod, ``access list`` shows the caller's own grants on every pod."""
    _register(services)
    podium.login("alice")
    podium("access", "grant", "--pod", "alice/census", "--user", "bob", "--role", "dp-modeller")
    podium.login("bob")
    mine = json.loads(podium("access", "list", "--json").out)
    assert {g["role"] for g in mine} == {"viewer", "private-sql", "statistics"}


def test_access_grant_by_someone_else_is_refused(
    podium: PodiumRunner, services: HubServices
) -> None:
    """Bob, a viewer of Alice's pod, cannot grant roles on it: exit 5, one line."""
    _register(services)
    services.access.grant(
        Principal("alice", False, "token"), "alice/census", "bob", "viewer", services.now()
    )
    podium.login("bob")
    result = podium("access", "grant", "--pod", "alice/census", "--user", "bob", "--role", "admin")
    line = _one_error_line(result, ExitCode.HUB)
    assert line == "error: Only the pod's owner or an administrator can do this."
    assert [g.role for g in services.store.list_grants(pod_id="alice/census")] == ["viewer"]


def test_access_on_an_invisible_pod(podium: PodiumRunner, services: HubServices) -> None:
    """A pod Bob holds no role on answers as if it did not exist."""
    _register(services)
    podium.login("bob")
    result = podium("access", "list", "--pod", "alice/census")
    assert "No such pod" in _one_error_line(result, ExitCode.HUB)


def test_access_unknown_role(podium: PodiumRunner, services: HubServices) -> None:
    """An unknown role exits 5 with ``No such role``."""
    _register(services)
    podium.login()
    result = podium("access", "grant", "--pod", "alice/census", "--user", "bob", "--role", "god")
    assert "No such role" in _one_error_line(result, ExitCode.HUB)


def test_access_roles(podium: PodiumRunner) -> None:
    """``access roles`` lists roles and presets; --json gives both maps."""
    podium.login()
    assert "general-modeller" in podium("access", "roles").out
    roles = json.loads(podium("access", "roles", "--json").out)
    assert "psi" in roles["roles"]
    assert "sql" in roles["presets"]["general-modeller"]


# -- projects ---------------------------------------------------------------------------


def test_projects(podium: PodiumRunner, services: HubServices) -> None:
    """Create a project, add a member and a pod, approve a task, and show it."""
    _register(services)
    podium.login()
    created = podium("projects", "create", "study", "--display-name", "A study")
    assert created.out.strip() == "Created project study."
    assert podium("projects", "add-member", "study", "bob").code == 0
    assert podium("projects", "add-pod", "study", "alice/census").code == 0
    approved = podium("projects", "approve-task", "study", TASK_HASH, "--description", "counts")
    assert approved.code == 0, approved.err
    shown = json.loads(podium("projects", "show", "study", "--json").out)
    assert (shown["members"], shown["pods"]) == (["bob"], ["alice/census"])
    assert [t["task_hash"] for t in shown["tasks"]] == [TASK_HASH]
    table = podium("projects", "show", "study").out
    assert "members: bob" in table
    assert TASK_HASH in table
    listed = json.loads(podium("projects", "list", "--json").out)
    assert [p["name"] for p in listed] == ["study"]
    assert podium("projects", "revoke-task", "study", TASK_HASH).code == 0
    assert podium("projects", "remove-pod", "study", "alice/census").code == 0
    assert podium("projects", "remove-member", "study", "bob").code == 0
    emptied = json.loads(podium("projects", "show", "study", "--json").out)
    assert (emptied["members"], emptied["pods"], emptied["tasks"]) == ([], [], [])


def test_project_of_someone_else(podium: PodiumRunner) -> None:
    """Adding a member to a project you do not own exits 5."""
    podium.login("alice")
    podium("projects", "create", "study")
    podium.login("bob")
    result = podium("projects", "add-member", "study", "bob")
    assert _one_error_line(result, ExitCode.HUB)


# -- offline administration -----------------------------------------------------------


def test_hub_create_user_offline(podium: PodiumRunner, tmp_path: Path) -> None:
    """``hub create-user`` writes the account into the hub's database; a second time the
    name is taken (exit 5)."""
    data = str(tmp_path / "hubdata")
    args = ("hub", "create-user", "carol", "--admin", "--password-stdin", "--data-dir", data)
    created = podium(*args, stdin=PASSWORD + "\n")
    assert created.code == 0, created.err
    assert created.out.strip() == "Created admin carol."
    assert (tmp_path / "hubdata" / "hub.db").exists()
    again = podium(*args, stdin=PASSWORD + "\n")
    assert "already exists" in _one_error_line(again, ExitCode.HUB)


def test_hub_create_user_short_password(podium: PodiumRunner, tmp_path: Path) -> None:
    """A too-short password is refused with the rule."""
    args = ("hub", "create-user", "carol", "--password-stdin", "--data-dir", str(tmp_path / "d"))
    line = _one_error_line(podium(*args, stdin="short\n"), ExitCode.HUB)
    assert "8 to 1024 characters" in line


def test_hub_create_user_defaults_to_podium_home(podium: PodiumRunner, home: Path) -> None:
    """Without --data-dir the hub's data goes to $PODIUM_HOME/hub."""
    result = podium("hub", "create-user", "carol", "--password-stdin", stdin=PASSWORD)
    assert result.code == 0, result.err
    assert (home / "hub" / "hub.db").exists()
    assert stat.S_IMODE((home / "hub" / "hub-signing-key.pem").stat().st_mode) == 0o600


def test_hub_create_user_bad_database_url(podium: PodiumRunner, tmp_path: Path) -> None:
    """A --db URL of an unsupported kind is a usage error naming the URL's kind."""
    result = podium(
        "hub",
        "create-user",
        "carol",
        "--password-stdin",
        "--db",
        "mysql://u:secret@h/db",
        stdin=PASSWORD,
    )
    line = _one_error_line(result, ExitCode.CONFIG)
    assert "mysql" in line
    assert "secret" not in line
