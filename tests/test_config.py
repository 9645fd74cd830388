"""predeploy.yaml: every malformed config is a usage error naming file, line and field, and
nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.core.errors import ConfigError
from tests.project import base_config, make_project


def dump(**changes: object) -> str:
    config = base_config()
    for dotted, value in changes.items():
        target = config
        *parents, last = dotted.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return yaml.safe_dump(config, sort_keys=False)


DELETE = object()
GOOD = dump()

# name -> (file content, text the message must contain)
MALFORMED: dict[str, tuple[str | bytes, str]] = {
    "bad yaml": ("version: 1\nproject: [unclosed\n", "predeploy.yaml:3: invalid YAML"),
    "tab indentation": ("version: 1\nproject:\n\t- x\n", "invalid YAML"),
    "duplicate key": (GOOD + "project: again\n", "duplicate key 'project'"),
    "not a mapping": ("- a\n- b\n", "expected a mapping of settings"),
    "empty file": ("", "expected a mapping of settings"),
    "wrong version": (dump(version=2), "version: Input should be 1"),
    "missing version": (dump(version=DELETE), "version: required field is missing"),
    "missing project": (dump(project=DELETE), "project: required field is missing"),
    "unknown top-level key": (GOOD + "projct: typo\n", "projct: unknown field"),
    "no services": (dump(services=[]), "services: List should have at least 1 item"),
    "duplicate service": (dump(services=[{"name": "api"}, {"name": "api"}]), "service 'api' is listed twice"),
    "service not a mapping": (dump(services=["api"]), "services.0"),
    "missing environments": (dump(environments=DELETE), "environments: required field is missing"),
    "unknown target environment": (dump(target_environment="prod"), "target_environment 'prod' is not one of environments"),
    "unknown placeholder": (dump(steps={"parity": {"command": "x {relase} {output}"}}), "unknown placeholder {relase}"),
    "placeholder of another step": (dump(steps={"deploy": {"command": "deploy {output}"}}), "steps.deploy.command uses unknown placeholder {output}"),
    "unknown placeholder in smoke_select": (
        dump(rollback={"smoke_select": "{svc} and not slow"}),
        "rollback.smoke_select: the expression uses unknown placeholder {svc}; allowed: {service}",
    ),
    "bad timeout": (dump(steps={"parity": {"command": "x", "timeout": "ten minutes"}}), "steps.parity.timeout: expected a duration"),
    "negative timeout": (dump(steps={"parity": {"command": "x", "timeout": -5}}), "steps.parity.timeout: a duration cannot be negative"),
    "unknown step key": (dump(steps={"parity": {"commnd": "x"}}), "steps.parity.commnd: unknown field"),
    "missing step command": (dump(steps={"parity": {"timeout": "5s"}}), "steps.parity.command: required field is missing"),
    "missing secrets file": (
        dump(environments={"staging": {"secrets": {"file": "nope.env"}}, "production": {}}),
        "environments.staging.secrets.file: file not found",
    ),
    "bad no_data policy": (dump(gates={"no_data": "maybe"}), "gates.no_data"),
    "approval without file": (dump(approvals={"upstream": [{"name": "p4"}]}), "approvals.upstream.0.file: required field is missing"),
    "bad approval max_age": (dump(approvals={"max_age": "soon", "upstream": []}), "approvals.max_age: expected a duration"),
    "empty upstream approvals": (dump(approvals={"upstream": []}), "approvals.upstream is empty, so Gate 1 would check no approval"),
    "empty required roles": (dump(readiness={"required_roles": []}), "readiness.required_roles is empty, so nobody would sign off"),
    "zero sign-off validity": (dump(readiness={"signoff_validity": "0s"}), "readiness.signoff_validity: must be longer than zero"),
    "env_vars not a list": (dump(redact={"env_vars": "TOKEN"}), "redact.env_vars: Input should be a valid list"),
    "previous release as list": (dump(previous_release=["v1"]), "previous_release: Input should be a valid string"),
    "environment not a mapping": (dump(environments={"staging": 3, "production": {}}), "environments.staging"),
    "impossible date": (GOOD + "parity:\n  waivers:\n  - expires_at: 2026-02-30\n", "a value that cannot be read as timestamp"),
    "integer of 5000 digits": ("version: " + "9" * 5000 + "\n", "predeploy.yaml:1: a value that cannot be read as int"),
    "non-utf8": (b"version: 1\nproject: \xff\xfe\n", "is not UTF-8 text"),
    "binary": (b"\x00\x01\x02version", "is a binary file"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_config_names_file_and_field(tmp_path: Path, case: str) -> None:
    content, expected = MALFORMED[case]
    path = tmp_path / "predeploy.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_line_numbers_point_at_the_field(tmp_path: Path) -> None:
    path = tmp_path / "predeploy.yaml"
    path.write_text(dump(steps={"parity": {"command": "x", "timeout": "never"}}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "timeout: never" in text)
    assert f"predeploy.yaml:{line}: steps.parity.timeout" in str(info.value)


@pytest.mark.parametrize("case", ["bad yaml", "unknown placeholder", "missing secrets file", "non-utf8"])
def test_malformed_config_stops_the_run_before_anything_executes(pytester: pytest.Pytester, case: str) -> None:
    root = make_project(pytester)
    content, expected = MALFORMED[case]
    (root / "predeploy.yaml").write_bytes(content if isinstance(content, bytes) else content.encode())
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "predeploy.yaml" in err and expected in err
    assert "Traceback" not in err + result.stdout.str()
    assert not (root / ".artifacts/pre-deployment/transcripts").exists()


def test_missing_config_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "--predeploy-config=missing.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*missing.yaml: configuration file not found*"])


def test_malformed_secrets_file_names_its_line_without_the_value(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    (root / "staging.env").write_text("GOOD=value-one\nthis line has no equals sign hunter2-secret\n")
    config = base_config(environments={"staging": {"secrets": {"file": "staging.env"}}, "production": {}})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "staging.env:2: expected NAME=value" in err
    assert "hunter2" not in err + result.stdout.str()


def test_unknown_environment_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest_inprocess("--predeploy-release=v1.0", "--predeploy-env=qa")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*environment 'qa' is not defined; environments: production, staging*"])


def test_empty_approval_and_signoff_lists_load_only_when_opted_out(tmp_path: Path) -> None:
    path = tmp_path / "predeploy.yaml"
    path.write_text(dump(approvals={"upstream": [], "allow_none": True}, readiness={"required_roles": [], "allow_no_signoff": True}))
    config = load_config(path)
    assert config.approvals.upstream == [] and config.readiness.required_roles == []
