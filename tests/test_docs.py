"""The generated documentation: the checked-in configuration reference and JSON Schemas match
the models, and every field of every config and artifact model is described."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from pytest_predeploy.config import ProjectConfig
from pytest_predeploy.core import artifacts
from pytest_predeploy.core.fields import StrictModel
from pytest_predeploy.tooling import cli
from pytest_predeploy.tooling.docs import artifact_models, config_reference, missing_descriptions, model_tree, schema_file, schemas

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "config-reference.md"
SCHEMAS = REPO / "docs" / "schemas"


def test_checked_in_config_reference_is_generated_from_the_models() -> None:
    assert REFERENCE.read_text() == config_reference(), (
        f"{REFERENCE.relative_to(REPO)} is out of date with the config models: run `predeploy docs` and commit the result"
    )


def test_checked_in_schemas_are_what_predeploy_schema_writes() -> None:
    expected = schemas()
    on_disk = {path.name: path.read_text() for path in SCHEMAS.glob("*.schema.json")}
    assert sorted(on_disk) == sorted(expected), "docs/schemas/ lists other artifacts than the models: run `predeploy schema` and commit the result"
    stale = [name for name, text in expected.items() if on_disk[name] != text]
    assert not stale, f"out of date: {', '.join(stale)}: run `predeploy schema` and commit the result"


def test_every_json_artifact_has_a_schema_with_its_own_id() -> None:
    for file_name in artifact_models():
        schema = json.loads(schemas()[schema_file(file_name)])
        assert schema["$id"].endswith("/" + schema_file(file_name))
        assert {"schema_version", "release", "generated_at", "step"} <= set(schema["properties"]), file_name


def test_project_config_has_no_field_without_a_description() -> None:
    assert missing_descriptions(ProjectConfig) == []


@pytest.mark.parametrize("model", list(model_tree(ProjectConfig)), ids=lambda model: model.__name__)
def test_every_config_model_describes_every_field(model: type[BaseModel]) -> None:
    assert missing_descriptions(model) == []


@pytest.mark.parametrize("file_name", sorted(artifact_models()))
def test_every_artifact_model_describes_every_field(file_name: str) -> None:
    assert missing_descriptions(artifact_models()[file_name]) == []


class _Inner(StrictModel):
    """A section with one undocumented field."""

    documented: int = Field(1, description="Has one.")
    undocumented: int = 2


class _Outer(StrictModel):
    """A config holding the section in a list and in a mapping."""

    name: str = Field("x", description="Has one.")
    parts: list[_Inner] = Field(default_factory=list, description="Sections.")
    by_name: dict[str, _Inner] = Field(default_factory=dict, description="The same section, by name.")


def test_the_description_check_fails_on_an_undocumented_nested_field() -> None:
    assert missing_descriptions(_Outer) == ["parts[].undocumented"]
    assert missing_descriptions(_Inner) == ["undocumented"]


def test_the_reference_shows_every_path_a_section_appears_at() -> None:
    assert model_tree(_Outer)[_Inner] == ["parts[]", "by_name.<name>"]
    reference = config_reference()
    assert "## `steps.parity`, `steps.deploy`, `steps.smoke`, `steps.rollback`, `steps.security` (StepConfig)" in reference
    # A section's default shows what differs from the section's own defaults: each step's command.
    assert '`{"command": "bash scripts/deploy_backend.sh --env {env} --release {release} --service {service}"}`' in reference
    assert '| `health_timeout` | duration | `"30s"` |' in reference


def test_predeploy_docs_and_schema_write_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The commands in this process (the `predeploy` entry point runs as a subprocess in test_init.py).
    stale = tmp_path / "schemas" / "retired-artifact.schema.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    for args in (["docs", "--output", str(tmp_path / "reference.md")], ["schema", "--output", str(tmp_path / "schemas")]):
        capsys.readouterr()
        status = cli.main(args)
        done = capsys.readouterr()
        assert status == 0, done.err
    assert (tmp_path / "reference.md").read_text() == config_reference()
    assert {path.name: path.read_text() for path in (tmp_path / "schemas").iterdir()} == schemas()
    assert "removed" in done.out and "retired-artifact.schema.json" in done.out


def test_the_artifact_reference_covers_every_artifact_and_schema() -> None:
    text = (REPO / "docs" / "artifacts.md").read_text()
    files = [
        value
        for name, value in vars(artifacts).items()
        if name.isupper() and isinstance(value, str) and Path(value).suffix in {".json", ".md", ".log", ".zip", ".html", ".xml"}
    ]
    assert len(files) > 15
    missing = [name for name in files if f"`{name}`" not in text]
    assert not missing, f"docs/artifacts.md does not describe {', '.join(missing)}"
    unlinked = [name for name in schemas() if f"(schemas/{name})" not in text]
    assert not unlinked, f"docs/artifacts.md does not link {', '.join(unlinked)}"
