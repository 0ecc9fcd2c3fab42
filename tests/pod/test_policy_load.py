"""Reading a pod's policy YAML: defaults, the documented example and readable errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from podium.core.errors import ConfigError, ConfigFileError, ConfigValidationError, ExitCode
from podium.pod.policy import DPCaps, PodPolicy, load_policy

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pod-policy.md"
HASH = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    """The message of the ConfigValidationError that loading ``text`` raises."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigValidationError) as info:
        load_policy(path)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


# -- accepted files ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# no rules yet\n", "---\n"])
def test_empty_file_gives_the_defaults(tmp_path: Path, text: str) -> None:
    """An empty file, or one with only comments, is the default policy."""
    assert load_policy(write(tmp_path, text)) == PodPolicy()


def test_defaults() -> None:
    """The defaults allow what the hub allows, but no custom model code and 4 tasks at once."""
    policy = PodPolicy()

    assert policy.allowed_users is None
    assert policy.denied_users == []
    assert policy.allowed_roles is None
    assert policy.allowed_protocols is None
    assert policy.allowed_algorithms is None
    assert policy.min_group_size == 10
    assert policy.dp == DPCaps()
    assert policy.dp.max_epsilon_per_task is None
    assert policy.allowed_model_hashes == []
    assert policy.max_concurrent_tasks == 4


def test_full_file_loads_every_field(tmp_path: Path) -> None:
    """Every key of the file reaches the model; hashes are lower-cased."""
    text = f"""\
allowed_users: [bob]
denied_users: [mallory]
allowed_roles: [sql, train]
allowed_protocols: [bitfount.ResultsOnly]
allowed_algorithms: [SqlQuery]
min_group_size: 5
dp:
  max_epsilon_per_task: 1
  max_delta_per_task: 1.0e-6
  total_epsilon_per_modeller: 10.5
  total_delta_per_modeller: 1.0e-5
allowed_model_hashes: [{HASH}]
max_concurrent_tasks: 2
"""
    policy = load_policy(write(tmp_path, text))

    assert policy == PodPolicy(
        allowed_users=["bob"],
        denied_users=["mallory"],
        allowed_roles=["sql", "train"],
        allowed_protocols=["bitfount.ResultsOnly"],
        allowed_algorithms=["SqlQuery"],
        min_group_size=5,
        dp=DPCaps(
            max_epsilon_per_task=1.0,
            max_delta_per_task=1e-6,
            total_epsilon_per_modeller=10.5,
            total_delta_per_modeller=1e-5,
        ),
        allowed_model_hashes=[HASH.lower()],
        max_concurrent_tasks=2,
    )


def test_documented_example_loads(tmp_path: Path) -> None:
    """The complete example in docs/pod-policy.md is a valid policy file."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(), re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1

    policy = load_policy(write(tmp_path, blocks[0]))

    assert policy.denied_users == ["dave"]
    assert policy.dp.total_epsilon_per_modeller == 10.0
    assert policy != PodPolicy()


def test_empty_values_of_other_keys_take_their_default(tmp_path: Path) -> None:
    """``denied_users:`` or ``dp:`` with no value means the default, not an error."""
    text = "denied_users:\ndp:\nallowed_model_hashes:\nmin_group_size:\n"

    assert load_policy(write(tmp_path, text)) == PodPolicy()


def test_empty_allow_list_is_allowed_and_means_nothing(tmp_path: Path) -> None:
    """``allowed_users: []`` is a valid, closed list."""
    assert load_policy(write(tmp_path, "allowed_users: []\n")).allowed_users == []


# -- refused files ------------------------------------------------------------------------


def test_missing_file_is_a_config_file_error(tmp_path: Path) -> None:
    """A missing file says so, names the path and exits as a config error."""
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigFileError, match="no such file") as info:
        load_policy(path)

    assert str(path) in str(info.value)
    assert info.value.exit_code == ExitCode.CONFIG


def test_unknown_key_names_file_line_and_a_suggestion(tmp_path: Path) -> None:
    """A misspelled key is refused with its line and the key it probably meant."""
    message = load_error(tmp_path, "allowed_users: [bob]\nallowed_algorithm: [SqlQuery]\n")

    assert "policy.yaml:2: allowed_algorithm: unknown key 'allowed_algorithm'" in message
    assert "Did you mean 'allowed_algorithms'?" in message


def test_unknown_key_under_dp(tmp_path: Path) -> None:
    """Unknown keys are refused inside ``dp`` too, with the keys known there."""
    message = load_error(tmp_path, "dp:\n  epsilon: 1.0\n")

    assert "policy.yaml:2: dp.epsilon: unknown key 'epsilon'" in message
    assert "max_epsilon_per_task" in message


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("dp:\n  max_epsilon_per_task: -1\n", "dp.max_epsilon_per_task", "greater than 0"),
        ("dp:\n  total_epsilon_per_modeller: 0\n", "dp.total_epsilon_per_modeller", "than 0"),
        ("dp:\n  max_epsilon_per_task: .inf\n", "dp.max_epsilon_per_task", "finite"),
        ("dp:\n  max_delta_per_task: 1\n", "dp.max_delta_per_task", "less than 1"),
        ("dp:\n  max_epsilon_per_task: one\n", "dp.max_epsilon_per_task", "valid number"),
        ("dp:\n  max_epsilon_per_task: true\n", "dp.max_epsilon_per_task", "valid number"),
        ("min_group_size: 0\n", "min_group_size", "greater than or equal to 1"),
        ("min_group_size: '10'\n", "min_group_size", "valid integer"),
        ("min_group_size: 2.5\n", "min_group_size", "valid integer"),
        ("max_concurrent_tasks: yes\n", "max_concurrent_tasks", "valid integer"),
        ("allowed_users: bob\n", "allowed_users", "valid list"),
        ("allowed_users: [Bob]\n", "allowed_users[0]", "not a user name"),
        ("denied_users: [1]\n", "denied_users[0]", "valid string"),
        ("allowed_roles: [sequel]\n", "allowed_roles[0]", "'private-sql'"),
        ("allowed_protocols: ['bitfount.']\n", "allowed_protocols[0]", "names no protocol"),
        ("allowed_model_hashes: [abc]\n", "allowed_model_hashes[0]", "not a SHA-256 hash"),
        ("dp: 3\n", "dp", "valid dictionary"),
    ],
)
def test_wrong_values_name_the_field(tmp_path: Path, text: str, where: str, says: str) -> None:
    """A wrong type or value names the file, the line, the field and what is wrong."""
    message = load_error(tmp_path, text)

    line = text.count("\n")  # every case's bad value is on its last line
    assert f"policy.yaml:{line}: {where}: " in message
    assert says in message


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Several mistakes give one error listing each of them."""
    message = load_error(tmp_path, "min_group_size: 0\nmax_concurrent_tasks: 0\nfoo: 1\n")

    assert "3 problems in the PodPolicy" in message
    for key in ("min_group_size", "max_concurrent_tasks", "foo"):
        assert f": {key}: " in message


@pytest.mark.parametrize(
    "key", ["allowed_users", "allowed_roles", "allowed_protocols", "allowed_algorithms"]
)
def test_allow_list_with_no_value_is_refused(tmp_path: Path, key: str) -> None:
    """An allow-list key with no value is ambiguous (everyone or no one?) and refused."""
    message = load_error(tmp_path, f"min_group_size: 5\n{key}:\n  # - commented out\n")

    assert f"policy.yaml:2: {key}: is empty (null)" in message
    assert "write [] to allow nothing" in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- bob\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("allowed_users: [bob\n", "invalid YAML"),
        ("min_group_size: 1\nmin_group_size: 2\n", "given twice"),
    ],
)
def test_unreadable_files_are_config_file_errors(tmp_path: Path, text: str, says: str) -> None:
    """A file that is not a YAML mapping is refused as a file error naming the file."""
    path = write(tmp_path, text)

    with pytest.raises(ConfigFileError, match=says) as info:
        load_policy(path)

    assert str(path) in str(info.value)


def test_variables_are_not_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``${VAR}`` stays as written: a policy file reads as written."""
    monkeypatch.setenv("POLICY_USER", "bob")

    message = load_error(tmp_path, "allowed_users: ['${POLICY_USER}']\n")

    assert "'${POLICY_USER}' is not a user name" in message


def test_every_loader_error_is_a_config_error(tmp_path: Path) -> None:
    """Callers can catch one type, ConfigError (exit code 2), for every bad policy file."""
    assert issubclass(ConfigValidationError, ConfigError)
    with pytest.raises(ConfigError):
        load_policy(write(tmp_path, "nonsense: 1\n"))


def test_model_forbids_extra_keys_and_is_frozen() -> None:
    """Built in Python, the model refuses unknown keys too, and cannot be changed."""
    with pytest.raises(ValidationError, match="extra"):
        PodPolicy.model_validate({"allowed_user": ["bob"]})
    policy = PodPolicy()
    with pytest.raises(ValidationError, match="frozen"):
        policy.min_group_size = 3
