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
from pytest_predeploy.harness.context import RunContext
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


def test_a_format_spec_a_step_value_cannot_take_is_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    data = base_config()
    data["steps"] = {"deploy": {"command": "deploy --release {release:d} --service {service}"}}
    path = tmp_path / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    ctx = RunContext(config=load_config(path), release="v1.2", previous_release="v1.1", env="staging", artifacts=tmp_path / "artifacts")
    with pytest.raises(ConfigError) as error:
        ctx.argv("deploy", service="api")
    assert str(error.value) == (
        f"{path}: steps.deploy.command cannot be filled in (Unknown format code 'd' for object of type 'str'); use plain placeholders such as {{release}}"
    )
