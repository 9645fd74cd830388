"""Command and path templates: one expander for every configured command, checked when the
config is loaded, filled when a step runs, every problem one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.core import template
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.template import TemplateError
from tests.project import base_config


def test_unknown_and_malformed_placeholders_are_refused_naming_the_field() -> None:
    assert template.check("{python} run.py --port {port}", {"python", "port"}, "command") == {"python", "port"}
    with pytest.raises(TemplateError) as unknown:
        template.check("{python} run.py --port {prot}", {"python", "port"}, "services[api].command")
    assert str(unknown.value) == "services[api].command uses unknown placeholder {prot}; allowed: {port}, {python}"
    with pytest.raises(TemplateError) as malformed:
        template.check("dist/{release", {"release"}, "template 'dist/{release'")
    assert str(malformed.value).startswith("template 'dist/{release' is not a valid format string (")
    assert str(malformed.value).endswith("; allowed: {release}")


def test_a_command_is_split_like_a_shell_line_and_each_word_filled() -> None:
    values = {"python": "/opt/py thon", "env": "staging"}
    assert template.fill_command("{python} -c 'print(1)' --env={env}", values, "f") == ["/opt/py thon", "-c", "print(1)", "--env=staging"]
    with pytest.raises(TemplateError, match=r"^f cannot be split into words: No closing quotation$"):
        template.fill_command("run 'unclosed", values, "f")
    with pytest.raises(TemplateError, match=r"^f: placeholder \{service\} has no value here$"):
        template.fill_command("deploy {service}", values, "f")


def test_free_text_keeps_braces_that_are_not_placeholders() -> None:
    assert template.fill_known('{"name": "{service}"}', {"service": "api"}) == '{"name": "api"}'


def test_a_format_spec_a_step_value_cannot_take_is_a_config_error_at_load(tmp_path: Path) -> None:
    data = base_config()
    data["steps"] = {"deploy": {"command": "deploy --release {release:d} --service {service}"}}
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "steps.deploy.command: placeholder {release:d} has a format spec that is not allowed" in str(error.value)


# -- issue 30, item 11: only plain placeholders, checked at load --------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("deploy {release:{service}}", "placeholder {release:{service}} has a format spec that is not allowed"),
        ("deploy {release:{python.__class__.__mro__}}", "placeholder {release:{python.__class__.__mro__}} has a format spec that is not allowed"),
        ("deploy {release.__class__}", "placeholder {release.__class__} is not a plain name"),
        ("deploy {env[0]}", "placeholder {env[0]} is not a plain name"),
        ("deploy {release!r}", "placeholder {release!r} has a conversion"),
        ("deploy {release:>300000000}", "placeholder {release:>300000000} has a format spec that is not allowed"),
    ],
)
def test_a_placeholder_that_is_not_plain_is_refused_at_load(command: str, expected: str) -> None:
    with pytest.raises(TemplateError) as error:
        template.check(command, {"release", "service", "python", "env"}, "steps.deploy.command")
    assert str(error.value).startswith(f"steps.deploy.command: {expected}"), str(error.value)
    with pytest.raises(TemplateError):  # and never filled, if a caller skipped the check
        template.fill(command, {"release": "v1.2", "service": "api", "python": "py", "env": "staging"}, "steps.deploy.command")


def test_the_allowed_format_specs_still_work() -> None:
    assert template.check("tag-{release:.3} {service:<5}|", {"release", "service"}, "f") == {"release", "service"}
    assert template.fill("tag-{release:.3} {service:<5}|", {"release": "v1.2.3", "service": "api"}, "f") == "tag-v1. api  |"


def test_a_nested_placeholder_in_a_step_command_is_a_usage_error_naming_file_and_field(tmp_path: Path) -> None:
    data = base_config()
    data["steps"] = {"deploy": {"command": "deploy --release {release:{config.__class__}} --service {service}"}}
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}:")
    assert "steps.deploy.command: placeholder {release:{config.__class__}} has a format spec that is not allowed" in str(error.value)
