"""Hostile input: alias bombs, absurd durations, deep nesting, oversized files and folders
without gate modules end in a usage error naming file and line, never a hang or a traceback.

Every run is a real subprocess with a timeout and a memory cap, so a regression fails the
test instead of eating the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.intake.approvals import ApprovalCheck, ApprovalsConfig, validate_intake
from tests.project import GATES, PARITY_OK, base_config

PREDEPLOY = str(Path(sys.executable).with_name("predeploy"))
#: Address space of every child: enough for pytest and the plugin, far below what an
#: expanded alias bomb needs.
MEMORY_CAP = 1536 * 1024 * 1024
#: A guard against hangs, not a timing assertion: each case finishes in well under a second.
HANG_GUARD = 60

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=HANG_GUARD, preexec_fn=_cap_memory)


def write_project(root: Path, config_text: str | None = None) -> Path:
    (root / "predeploy.yaml").write_text(config_text if config_text is not None else yaml.safe_dump(base_config(), sort_keys=False))
    (root / "parity.py").write_text(textwrap.dedent(PARITY_OK))
    (root / "gates").mkdir(exist_ok=True)
    for name, body in GATES.items():
        (root / "gates" / name).write_text(textwrap.dedent(body))
    return root


def run_protocol(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider", *extra], root)


def assert_usage_error(done: subprocess.CompletedProcess[str], root: Path, *expected: str) -> None:
    """Exit 4, the message, no traceback, and nothing ran (no report written)."""
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    for text in expected:
        assert text in output, output
    assert not (root / ".artifacts" / "pre-deployment" / "pytest-report.json").exists()


def config_with(extra_yaml: str) -> str:
    return yaml.safe_dump(base_config(), sort_keys=False) + extra_yaml


def intake_of(root: Path, record: str, name: str = "p4.yaml") -> dict[str, object]:
    """Gate 1's verdict on one approval record, judged in a capped child process."""
    (root / name).write_text(record)
    config = base_config(approvals={"upstream": [{"name": "p4", "file": name}]})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pytest_predeploy.config import load_config\n"
        "from pytest_predeploy.intake.approvals import validate_intake\n"
        "report = validate_intake(load_config(Path('predeploy.yaml')).approvals, 'v1.0', operator='ci-bot')\n"
        "print(json.dumps(report.checks[0].model_dump(mode='json')))\n"
    )
    done = run([sys.executable, "-c", script], root)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# -- item 1: alias bombs --------------------------------------------------------------------


def test_alias_bomb_in_the_config_is_a_usage_error_naming_its_line(tmp_path: Path) -> None:
    root = write_project(tmp_path, config_with("anchors:\n" + textwrap.indent(BOMB, "  ")))
    done = run_protocol(root)
    assert_usage_error(done, tmp_path, "predeploy.yaml:", "aliases expand to more than 100,000 values")


def test_alias_bomb_in_an_approval_record_makes_it_malformed(tmp_path: Path) -> None:
    record = "release: v1.0\nstatus: approved\napproved_by: dana\napproved_at: 2026-01-01T00:00:00Z\n" + BOMB
    check = intake_of(tmp_path, record)
    assert check["status"] == "malformed"
    assert f"{tmp_path / 'p4.yaml'}:" in str(check["detail"]) and "aliases expand" in str(check["detail"])


def test_aliases_that_expand_modestly_still_work_and_keep_lines(tmp_path: Path) -> None:
    extra = "steps:\n  parity: &step {command: '{python} parity.py {output}', timeout: 20s}\n  smoke:\n    <<: *step\n    timeout: never\n"
    config = yaml.safe_dump({k: v for k, v in base_config().items() if k != "steps"}, sort_keys=False) + extra
    root = write_project(tmp_path, config)
    done = run_protocol(root)
    count = len(config.splitlines())
    assert_usage_error(done, tmp_path, f"predeploy.yaml:{count}: steps.smoke.timeout: expected a duration")


# -- item 2: durations and nesting ----------------------------------------------------------


@pytest.mark.parametrize("value", ["99999999999999w", ".inf", "9" * 400])
def test_absurd_duration_is_a_usage_error_naming_its_line(tmp_path: Path, value: str) -> None:
    config = base_config()
    config["steps"]["parity"]["timeout"] = "PLACEHOLDER"
    text = yaml.safe_dump(config, sort_keys=False).replace("PLACEHOLDER", value)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "timeout:" in content)
    done = run_protocol(write_project(tmp_path, text))
    assert_usage_error(done, tmp_path, f"ERROR: {tmp_path / 'predeploy.yaml'}:{line}: steps.parity.timeout: a duration cannot be longer than")


def test_absurd_expiry_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    done = run([PREDEPLOY, "approve", "missing.zip", "--role", "qa", "--by", "bo", "--decision", "go", "--expires", "99999999999999w"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--expires: a duration cannot be longer than" in done.stderr


def test_deep_nesting_in_the_config_is_a_usage_error_naming_its_line(tmp_path: Path) -> None:
    text = config_with("deep: " + "[" * 5000 + "]" * 5000 + "\n")
    line = len(text.splitlines())
    done = run_protocol(write_project(tmp_path, text))
    assert_usage_error(done, tmp_path, f"predeploy.yaml:{line}: nesting deeper than 64 levels")


def test_deep_nesting_in_a_json_approval_record_makes_it_malformed(tmp_path: Path) -> None:
    record = '{"release": "v1.0",\n"status": "approved",\n"extra": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    check = intake_of(tmp_path, record, "p4.json")
    assert check["status"] == "malformed"
    assert f"{tmp_path / 'p4.json'}:3: nesting deeper than" in str(check["detail"])


# -- item 3: file sizes ---------------------------------------------------------------------


def test_oversized_config_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    filler = "# " + "x" * 1000 + "\n"
    text = config_with("unknown_key: 1\n" + filler * 2048)
    done = run_protocol(write_project(tmp_path, text))
    assert_usage_error(done, tmp_path, "predeploy.yaml: configuration file is larger than 1MiB")


def test_oversized_approval_record_is_malformed(tmp_path: Path) -> None:
    record = "release: v1.0\nstatus: approved\napproved_by: dana\napproved_at: 2026-01-01T00:00:00Z\n" + ("# " + "x" * 1000 + "\n") * 2048
    check = intake_of(tmp_path, record)
    assert check["status"] == "malformed"
    assert "approval record is larger than 1MiB" in str(check["detail"])


def test_baseline_size_limit_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "staging.yaml").write_text("db:\n  host: " + "h" * 4096 + "\n")
    (tmp_path / "production.yaml").write_text("db:\n  host: p\n")
    config = base_config(
        environments={"staging": {"configuration": ["staging.yaml"]}, "production": {"configuration": ["production.yaml"]}},
        parity={"max_input_size": "2KiB"},
    )
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    script = (
        "from pathlib import Path\n"
        "from pytest_predeploy.config import load_config\n"
        "from pytest_predeploy.core.errors import ConfigError\n"
        "from pytest_predeploy.intake.parity import load_environment\n"
        "config = load_config(Path('predeploy.yaml'))\n"
        "load_environment(config, 'production')\n"
        "try:\n"
        "    load_environment(config, 'staging')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = run([sys.executable, "-c", script], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "staging.yaml: yaml file is larger than 2KiB" in done.stdout
    assert "raise parity.max_input_size" in done.stdout


# -- item 9: a gates folder without gates, a sign-off that expires at once ------------------


def test_gates_dir_without_gate_modules_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "not-gates"
    empty.mkdir()
    (empty / "README.md").write_text("nothing here\n")
    root = write_project(tmp_path, yaml.safe_dump(base_config(gates_dir="not-gates"), sort_keys=False))
    done = run_protocol(root)
    assert_usage_error(done, tmp_path, f"gates_dir {empty} holds no gate module")


@pytest.mark.parametrize("value", ["0s", "0w"])
def test_approve_refuses_a_validity_that_is_not_positive(tmp_path: Path, value: str) -> None:
    done = run([PREDEPLOY, "approve", "missing.zip", "--role", "qa", "--by", "bo", "--decision", "go", f"--expires={value}"], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "--expires:" in done.stderr
    assert not (tmp_path / "readiness-approval.json").exists()


# -- forged upstream approval records ---------------------------------------------------------

RECORD = "release: v1.0\nstatus: approved\napproved_by: {by}\napproved_at: {at}\n"


def intake_in_process(root: Path, name: str, content: str, monkeypatch: pytest.MonkeyPatch) -> ApprovalCheck:
    (root / name).write_text(content)
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "ci-bot")
    config = ApprovalsConfig.model_validate({"upstream": [{"name": "p4", "file": name}]}, context={"base_dir": root})
    return validate_intake(config, "v1.0").checks[0]


@pytest.mark.parametrize(
    ("by", "at", "status"),
    [
        ("''", "2026-01-01T00:00:00Z", "malformed"),
        ("'   '", "2026-01-01T00:00:00Z", "malformed"),
        ("CI-Bot", "2026-01-01T00:00:00Z", "self-approved"),
        ("dana", "2099-01-01T00:00:00Z", "future-dated"),
    ],
)
def test_an_upstream_approval_without_a_real_approver_or_dated_ahead_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by: str, at: str, status: str
) -> None:
    check = intake_in_process(tmp_path, "p4.yaml", RECORD.format(by=by, at=at), monkeypatch)
    assert check.status == status, check.detail


def test_a_json_approval_record_with_a_duplicate_key_is_malformed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = '{"release": "v1.0", "status": "rejected", "approved_by": "dana",\n "approved_at": "2026-01-01T00:00:00Z", "status": "approved"}\n'
    check = intake_in_process(tmp_path, "p4.json", content, monkeypatch)
    assert check.status == "malformed"
    assert f"{tmp_path / 'p4.json'}:2: duplicate key 'status' (first defined on line 1)" in check.detail
    assert check.sha256 == hashlib.sha256(content.encode()).hexdigest()  # the evidence names the bytes judged


@pytest.mark.parametrize(
    ("at", "status"),
    [
        ("9999-12-31T23:00:00-05:00", "malformed"),  # past the last datetime once in UTC
        ("9999-12-20T00:00:00Z", "future-dated"),  # adding max_age would overflow
    ],
)
def test_approval_dates_at_the_end_of_time_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str, status: str) -> None:
    (tmp_path / "p4.yaml").write_text(RECORD.format(by="dana", at=at))
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "ci-bot")
    config = ApprovalsConfig.model_validate({"max_age": "30d", "upstream": [{"name": "p4", "file": "p4.yaml"}]}, context={"base_dir": tmp_path})
    check = validate_intake(config, "v1.0").checks[0]
    assert check.status == status, check.detail


# -- issue 30, item 1: the artifacts folder is the tool's, and only the tool's -----------------

#: Gate 1 run alone: it passes, but the protocol is not judged (README, exit statuses).
NOT_JUDGED = 11


def test_a_non_empty_folder_the_tool_did_not_create_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    done = run_protocol(root, "--predeploy-artifacts=.")
    output = done.stdout + done.stderr
    assert done.returncode == 4, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, output
    assert f"the artifacts folder {root} is not empty and was not created by pytest-predeploy (it holds .git," in errors[0]
    assert "give --predeploy-artifacts another folder, or empty this one" in errors[0]
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_a_run_moves_only_what_runs_wrote_and_rotation_deletes_only_its_own_history(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    artifacts = root / "evidence"
    first = run_protocol(root, "--predeploy-artifacts=evidence", "gates/test_gate1_intake.py")
    assert first.returncode == NOT_JUDGED, first.stdout + first.stderr
    # A file moved into the folder keeps its time, older than the folder: it is not a run's.
    notes = root / "notes.txt"
    notes.write_text("mine\n")
    os.utime(notes, (1_000_000_000, 1_000_000_000))
    os.replace(notes, artifacts / "notes.txt")
    (artifacts / "history" / "keep-me").mkdir(parents=True)
    for day in range(1, 8):
        (artifacts / "history" / f"2026010{day}T000000.000000Z").mkdir()
    second = run_protocol(root, "--predeploy-artifacts=evidence", "gates/test_gate1_intake.py")
    assert second.returncode == NOT_JUDGED, second.stdout + second.stderr
    assert (artifacts / "notes.txt").read_text() == "mine\n"
    assert "not written by a run of pytest-predeploy: notes.txt" in second.stdout
    assert "not a run's history: keep-me" in second.stdout
    history = sorted(p.name for p in (artifacts / "history").iterdir())
    assert "keep-me" in history and len(history) == 1 + 5
    newest = artifacts / "history" / history[-2]
    assert (newest / "staging-parity-report.json").is_file()
    assert not (newest / "notes.txt").exists()


# -- issue 30, items 9 and 10: every document the tool reads is held to the same limits --------

CORPUS = Path(__file__).parent / "data" / "hostile"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alias-bomb.yaml", ":7: aliases expand to more than 100,000 values"),
        ("self-alias.yaml", ":2: an alias that contains itself"),
        ("deep-100.yaml", ":2: nesting deeper than 64 levels"),
        ("huge-int.toml", ": a value that cannot be read (an integer of more than 4300 digits"),
        ("deep-5000.toml", ":2: nesting deeper than 64 levels"),
        ("huge-int.json", ": a value that cannot be read (an integer of more than 4300 digits"),
    ],
)
def test_a_hostile_baseline_is_one_message_naming_the_file(name: str, expected: str) -> None:
    from pytest_predeploy.intake.parity.inputs import load_input_file

    with pytest.raises(ConfigError) as error:
        load_input_file(CORPUS / name)
    assert str(error.value).startswith(f"{CORPUS / name}{expected}"), str(error.value)
    assert "\n" not in str(error.value)


def test_an_alias_bomb_in_the_flags_file_fails_gate_1_instead_of_expanding(tmp_path: Path) -> None:
    (tmp_path / "flags.yaml").write_text((CORPUS / "alias-bomb.yaml").read_text())
    (tmp_path / "prod-flags.yaml").write_text("a: 1\n")
    config = base_config(
        environments={"staging": {"flags": ["flags.yaml"], "refresh": {"owner": "qa"}}, "production": {"flags": ["prod-flags.yaml"]}},
    )
    script = (
        "from pathlib import Path\n"
        "from pytest_predeploy.config import load_config\n"
        "from pytest_predeploy.core.errors import ConfigError\n"
        "from pytest_predeploy.intake.refresh import run_data_refresh\n"
        "try:\n"
        "    result = run_data_refresh(load_config(Path('predeploy.yaml')), 'staging', 'v1.0', Path('artifacts'))\n"
        "    print('expanded', len(result.flag_states))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = run([sys.executable, "-c", script], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"{tmp_path / 'flags.yaml'}:7: aliases expand to more than 100,000 values; write the repeated settings out instead of nesting aliases"
    )


# -- issue 30, items 10 and 12: nonsense in the config is refused at load, by field -------------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        node[last] = value

    return change


NONSENSE = {
    "empty command": (_set("steps.parity.command", ""), "steps.parity.command is empty; name the program to run"),
    "file URL": (_set("services.0.url", "file:///etc/passwd"), "services.0.url: url must be an http:// or https:// address with a host"),
    "zero health timeout": (_set("services.0.health_timeout", 0), "services.0.health_timeout: health_timeout must be longer than zero"),
    "name with a newline": (_set("services.0.name", "api\n"), "services.0.name: service name 'api\\n' must be letters"),
    "infinite recovery target": (_set("rollback.recovery_target_seconds", float("inf")), "rollback.recovery_target_seconds: Input should be a finite number"),
    "NaN recovery target": (_set("rollback.recovery_target_seconds", float("nan")), "rollback.recovery_target_seconds: Input should be a finite number"),
    "NaN timeout": (_set("steps.parity.timeout", float("nan")), "steps.parity.timeout: expected a duration such as '30d', '12h', '15m' or '90s', got .nan"),
    "empty redact entry": (_set("redact.env_vars", ["CI_TOKEN", ""]), "redact.env_vars: entry 1 is not an environment variable name"),
}


@pytest.mark.parametrize("case", list(NONSENSE))
def test_nonsense_in_the_config_is_refused_naming_the_field(tmp_path: Path, case: str) -> None:
    change, expected = NONSENSE[case]
    config = base_config()
    change(config)
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}:"), str(error.value)
    assert expected in str(error.value)


def test_twenty_thousand_ignore_rules_are_not_blamed_on_aliases(tmp_path: Path) -> None:
    rules = [{"path": f"settings.key{index}", "reason": "generated"} for index in range(20_000)]
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(base_config(parity={"ignore": rules}), sort_keys=False))
    assert len(load_config(path).parity.ignore) == 20_000


def test_a_fifo_as_the_config_file_is_refused_by_name_not_waited_on(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    os.mkfifo(root / "fifo.yaml")
    done = run_protocol(root, "--predeploy-config=fifo.yaml")
    assert_usage_error(done, root, f"{root / 'fifo.yaml'}: is not a regular file (a FIFO, socket or device), expected a configuration file")


def test_a_folder_of_ones_own_with_the_tools_names_is_refused_and_an_older_versions_is_adopted(tmp_path: Path) -> None:
    from pytest_predeploy.core.errors import PredeployError
    from pytest_predeploy.harness import artifactsdir

    mine = tmp_path / "mine"
    (mine / "history").mkdir(parents=True)
    (mine / "transcripts").mkdir()
    (mine / "transcripts" / "build.log").write_text("my own build log\n")
    with pytest.raises(PredeployError, match="is not empty and was not created by pytest-predeploy"):
        artifactsdir.claim(mine)
    assert not (mine / artifactsdir.MARKER).exists()
    older = tmp_path / "older"
    older.mkdir()
    for name in (".predeploy.lock", "predeploy-run.json", "staging-parity-report.json"):
        (older / name).write_text("{}")
    artifactsdir.claim(older)
    assert artifactsdir.archive_previous_run(older) == []
    assert sorted(p.name for p in older.iterdir()) == [".predeploy-artifacts", ".predeploy.lock", "history"]
