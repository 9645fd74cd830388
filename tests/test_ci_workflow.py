"""The GitHub Actions example (docs/ci/github-actions.yml) can complete: every job, step, output,
artifact and command it names exists, and the two required roles are signed in two jobs behind two
protected environments. actionlint is not run: on PyPI it is an sdist that downloads its binary
from GitHub while building, so it does not install from a package registry alone."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_predeploy
from pytest_predeploy.core.artifacts import PACKAGE, READINESS_APPROVAL

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "docs/ci/github-actions.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def jobs_of(workflow: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    return jobs


def needs_of(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def ancestors(jobs: dict[str, dict[str, Any]], name: str) -> set[str]:
    seen: set[str] = set()
    todo = needs_of(jobs[name])
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(needs_of(jobs[parent]))
    return seen


def commands(script: str) -> Iterator[list[str]]:
    """The shell commands of a run: script, continuations joined, expressions made plain words."""
    for line in script.replace("\\\n", " ").splitlines():
        line = EXPRESSION.sub("EXPR", line).strip()
        if line and not line.startswith("#"):
            yield shlex.split(line, comments=True)


def predeploy_parser() -> Any:
    # Through the console script, wherever the restructure puts the CLI module.
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "predeploy"]
    module = __import__(script.module, fromlist=["build_parser"])
    return module.build_parser()


def test_jobs_needs_and_outputs_exist(workflow: dict[Any, Any]) -> None:
    jobs = jobs_of(workflow)
    inputs = set(workflow[True]["workflow_dispatch"]["inputs"])  # PyYAML reads the key `on` as True
    for name, job in jobs.items():
        for parent in needs_of(job):
            assert parent in jobs, f"job {name} needs unknown job {parent}"
        assert name not in ancestors(jobs, name), f"job {name} depends on itself"
        step_ids = {step["id"] for step in job["steps"] if "id" in step}
        text = yaml.safe_dump(job)
        for expression in EXPRESSION.findall(text):
            parts = expression.split(".")
            if parts[0] == "inputs":
                assert parts[1] in inputs, f"job {name}: unknown input {parts[1]}"
            elif parts[0] == "needs":
                assert parts[1] in needs_of(job), f"job {name} reads needs.{parts[1]} without needing it"
                assert parts[3] in jobs[parts[1]].get("outputs", {}), f"job {parts[1]} has no output {parts[3]}"
            elif parts[0] == "steps":
                assert parts[1] in step_ids, f"job {name}: no step with id {parts[1]}"
            else:
                assert parts[0] in {"secrets", "github"}, f"job {name}: unexpected expression {expression}"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"job {name}: a step has both or neither of uses/run"
            if "uses" in step:
                assert re.fullmatch(r"actions/(checkout|setup-python|upload-artifact|download-artifact)@v\d+", step["uses"]), step["uses"]


def test_every_downloaded_artifact_is_uploaded_by_a_job_before_it(workflow: dict[Any, Any]) -> None:
    jobs = jobs_of(workflow)
    uploads = {step["with"]["name"]: name for name, job in jobs.items() for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")}
    for name, job in jobs.items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/download-artifact"):
                artifact = step["with"]["name"]
                assert artifact in uploads, f"job {name} downloads {artifact}, which no job uploads"
                assert uploads[artifact] in ancestors(jobs, name), f"job {name} downloads {artifact} before {uploads[artifact]} has run"


def test_every_command_exists_with_the_options_it_is_given(workflow: dict[Any, Any]) -> None:
    parser = predeploy_parser()
    package_sources = "\n".join(path.read_text() for path in Path(pytest_predeploy.__file__).parent.rglob("*.py"))
    project = yaml.safe_load((REPO / "pyproject.toml").read_text().split("[project]")[1].split("\n\n")[0].replace(" = ", ": "))
    seen: set[str] = set()
    for job in jobs_of(workflow).values():
        for step in job["steps"]:
            for argv in commands(step.get("run", "")):
                seen.add(argv[0])
                if argv[0] == "predeploy":
                    try:
                        parser.parse_args(argv[1:])
                    except SystemExit:
                        pytest.fail(f"`{shlex.join(argv)}` is not a valid predeploy command line (see the error above)")
                elif argv[0] == "pytest":
                    for arg in argv[1:]:
                        if arg.startswith("--"):
                            assert arg.split("=")[0] in package_sources, f"pytest option {arg} is not one of ours"
                        else:
                            assert (REPO / arg).is_file(), f"pytest is given {arg}, which does not exist"
                elif argv[:4] == ["python", "-m", "pip", "install"]:
                    assert argv[4] == project["name"]
    assert {"predeploy", "pytest"} <= seen
    text = WORKFLOW.read_text()
    assert f".artifacts/pre-deployment/{PACKAGE}" in text and f".artifacts/pre-deployment/{READINESS_APPROVAL}" in text


def test_required_roles_are_signed_by_different_people_behind_different_environments(workflow: dict[Any, Any]) -> None:
    jobs = jobs_of(workflow)
    required = yaml.safe_load((REPO / "predeploy.yaml").read_text())["readiness"]["required_roles"]
    signers: dict[str, tuple[str, str]] = {}
    for name, job in jobs.items():
        for step in job["steps"]:
            for argv in commands(step.get("run", "")):
                if argv[:2] == ["predeploy", "approve"]:
                    role = argv[argv.index("--role") + 1]
                    assert "--key" in argv, f"job {name} records an unsigned sign-off"
                    assert "--by" not in argv, "the identity comes from the key, not from free text"
                    assert job.get("environment"), f"job {name} signs without a protected environment"
                    assert step["env"]["PREDEPLOY_SIGNING_KEY"] == "${{ secrets.PREDEPLOY_SIGNING_KEY }}"
                    signers[role] = (name, job["environment"])
    assert sorted(signers) == sorted(required)
    assert len({job for job, _ in signers.values()}) == len(required)
    assert len({environment for _, environment in signers.values()}) == len(required)
    # Gate 4 runs after every signing job and must end with exit 0: no status is swallowed there.
    (gate4,) = [name for name, job in jobs.items() for step in job["steps"] if "gates/test_gate4_readiness.py" in step.get("run", "")]
    assert {job for job, _ in signers.values()} <= ancestors(jobs, gate4)
    assert "set +e" not in yaml.safe_dump(jobs[gate4])
    # The rehearsal job accepts 10 (awaiting sign-off) and records who ran it.
    rehearse = [step for step in jobs["rehearse"]["steps"] if step.get("id") == "protocol"][0]
    assert '[ "$status" = 10 ]' in rehearse["run"] and "PREDEPLOY_OPERATOR" in rehearse["env"]
