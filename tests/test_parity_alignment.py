"""Parity's alignment of lists without an identifying key: a shortest edit script over element
fingerprints that use the differ's own equality, modified elements paired with their
counterparts, and a bound past which a list is paired by position (and the report says so)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from pytest_predeploy.intake.parity import ParityReport, compare_environments
from tests.parity_project import baselines


def compare(config: object) -> ParityReport:
    return compare_environments(config, "staging", "production", "v1.2")  # type: ignore[arg-type]


def pipeline(steps: Sequence[Mapping[str, object]]) -> str:
    return yaml.safe_dump({"jobs": {"deploy": {"steps": steps}}}, sort_keys=False)


SMOKE = {"run": "./smoke.sh", "shell": "bash"}
PATH = "infrastructure.jobs.deploy.steps"


def items(report: ParityReport) -> list[tuple[str, str]]:
    return sorted((item.path, item.kind) for item in report.items)


def test_one_step_inserted_among_repeated_steps_is_exactly_one_added_item(tmp_path: Path) -> None:
    production = pipeline([SMOKE, SMOKE, SMOKE, SMOKE])
    staging = pipeline([SMOKE, {"run": "./migrate.sh"}, SMOKE, SMOKE, SMOKE])
    report = compare(baselines(tmp_path, staging, production, name="ci.yaml"))
    assert items(report) == [(f"{PATH}[1]", "added")]
    assert report.items[0].source_value is not None and report.items[0].source_value.value == {"run": "./migrate.sh"}


def test_one_changed_step_among_repeated_steps_is_one_changed_item(tmp_path: Path) -> None:
    production = pipeline([SMOKE, SMOKE, SMOKE, SMOKE])
    staging = pipeline([SMOKE, {"run": "./smoke.sh", "shell": "sh"}, SMOKE, SMOKE])
    report = compare(baselines(tmp_path, staging, production, name="ci.yaml"))
    assert items(report) == [(f"{PATH}[1].shell", "changed")]


def test_an_element_whose_name_keyed_env_is_only_reordered_matches_its_counterpart(tmp_path: Path) -> None:
    env = [{"name": "REGION", "value": "eu"}, {"name": "LOG_LEVEL", "value": "info"}]
    build = {"run": "./build.sh", "env": env}
    production = pipeline([build, SMOKE, {"run": "./publish.sh"}])
    # The same elements, build's env in the other order (the differ compares it by name), and
    # one step inserted before them.
    staging = pipeline([{"run": "./lint.sh"}, {"run": "./build.sh", "env": env[::-1]}, SMOKE, {"run": "./publish.sh"}])
    report = compare(baselines(tmp_path, staging, production, name="ci.yaml"))
    assert items(report) == [(f"{PATH}[0]", "added")]


def test_a_modified_element_beside_a_removed_one_is_paired_with_its_counterpart(tmp_path: Path) -> None:
    notify = {"name": "notify", "run": "./notify.sh", "shell": "bash"}
    production = pipeline([SMOKE, {"run": "./backup.sh", "timeout": 30}, notify, {"run": "./publish.sh"}])
    staging = pipeline([SMOKE, {**notify, "shell": "sh"}, {"run": "./publish.sh"}])
    report = compare(baselines(tmp_path, staging, production, name="ci.yaml"))
    assert items(report) == [(f"{PATH}[1]", "removed"), (f"{PATH}[1].shell", "changed")]
    removed = next(item for item in report.items if item.kind == "removed")
    assert removed.target_value is not None and removed.target_value.value == {"run": "./backup.sh", "timeout": 30}


def test_a_list_too_different_to_align_within_the_bound_is_paired_by_position_and_says_so(tmp_path: Path) -> None:
    # 3,000 distinct elements reversed: a shortest edit script needs ~6,000 edits, past the
    # bound for this length, so the elements are paired by position.
    production = pipeline([{"run": f"./step-{i}.sh"} for i in range(3000)])
    staging = pipeline([{"run": f"./step-{i}.sh"} for i in reversed(range(3000))])
    report = compare(baselines(tmp_path, staging, production, name="ci.yaml"))
    assert {item.kind for item in report.items} == {"changed"} and len(report.items) == 3000
    assert report.items[0].path.startswith(f"{PATH}[")
    assert any(f"{PATH}: 3000 and 3000 elements differ too much to align" in note for note in report.notes), report.notes
