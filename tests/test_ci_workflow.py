"""The GitHub Actions example (docs/ci/github-actions.yml) can complete: every job, step, output,
artifact and command it names (and every command its header tells reviewers to run) exists in
the real CLI; it installs the plugin in a way that works and refreshes advisories first; people
sign on their own machines, never in CI, and Gate 4 reads the record they pushed. actionlint is not run: on PyPI it is an sdist that downloads its binary
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
from pytest_predeploy.readiness.record import BRANCH, REF

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


def documented_commands() -> Iterator[list[str]]:
    """The commands the header tells reviewers to run on their own machines."""
    lines = [line.removeprefix("#").strip() for line in WORKFLOW.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    for line in text.splitlines():
        for start in ("predeploy ", "git ", "gh "):
            if start in line and line.split(start)[0].strip() == "":
                yield shlex.split(line, comments=True)


def run_commands(workflow: dict[Any, Any]) -> Iterator[tuple[str, list[str]]]:
    for name, job in jobs_of(workflow).items():
        for step in job["steps"]:
            for argv in commands(step.get("run", "")):
                yield name, argv


def test_every_command_exists_with_the_options_it_is_given(workflow: dict[Any, Any]) -> None:
    parser = predeploy_parser()
    package_sources = "\n".join(path.read_text() for path in Path(pytest_predeploy.__file__).parent.rglob("*.py"))
    seen: set[str] = set()
    for _, argv in run_commands(workflow):
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
    assert {"predeploy", "pytest"} <= seen
    # What reviewers run on their own machines, from the header, is checked the same way.
    documented = list(documented_commands())
    approve = [argv for argv in documented if argv[:2] == ["predeploy", "approve"]]
    assert approve, "the header shows reviewers how to sign"
    for argv in documented:
        if argv[0] == "predeploy":
            try:
                parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"`{shlex.join(argv)}` in the header is not a valid predeploy command line")
    assert ["git", "push", "origin", BRANCH] in documented
    text = WORKFLOW.read_text()
    assert f".artifacts/pre-deployment/{PACKAGE}" in text and f".artifacts/pre-deployment/{READINESS_APPROVAL}" in text


def test_the_plugin_is_installed_the_way_that_works(workflow: dict[Any, Any]) -> None:
    # pytest-predeploy is not on the package index: `pip install pytest-predeploy` fails.
    project = yaml.safe_load((REPO / "pyproject.toml").read_text().split("[project]")[1].split("\n\n")[0].replace(" = ", ": "))
    source = workflow["env"]["PREDEPLOY_SOURCE"]
    assert source.startswith("git+https://") or source.endswith(".whl"), source
    installs = 0
    for name, job in jobs_of(workflow).items():
        steps = [argv for _, argv in run_commands({"jobs": {name: job}})]
        pips = [argv for argv in steps if argv[:4] == ["python", "-m", "pip", "install"]]
        assert pips, f"job {name} never installs the plugin"
        for argv in pips:
            installs += 1
            assert argv[4] == "$PREDEPLOY_SOURCE" and project["name"] not in argv, f"job {name}: {shlex.join(argv)}"
    assert installs == len(jobs_of(workflow))


def test_advisories_are_refreshed_before_the_protocol_runs(workflow: dict[Any, Any]) -> None:
    for name, job in jobs_of(workflow).items():
        order = [argv for _, argv in run_commands({"jobs": {name: job}}) if argv[0] in ("predeploy", "pytest")]
        full_runs = [index for index, argv in enumerate(order) if argv[0] == "pytest" and not any("gates/" in arg for arg in argv)]
        for index in full_runs:
            refreshed = [argv[:3] for argv in order[:index]]
            assert ["predeploy", "advisories", "update"] in refreshed, f"job {name} runs the protocol on advisory data it did not refresh"


def test_people_sign_as_themselves_and_gate4_reads_the_record(workflow: dict[Any, Any]) -> None:
    jobs = jobs_of(workflow)
    text = yaml.safe_dump(workflow)
    # No job signs: reviewers sign on their own machines with their own keys, never stored in CI;
    # and the decision (go or no-go) is theirs, never written into the workflow.
    for name, argv in run_commands(workflow):
        assert argv[:2] != ["predeploy", "approve"], f"job {name} signs in CI"
        assert "--decision" not in argv
    assert "SIGNING_KEY" not in text and "KEY_PASSPHRASE" not in text
    # The operator is the platform's actor, not a variable the workflow sets.
    assert "PREDEPLOY_OPERATOR" not in text
    # Gate 4 runs after the rehearsal, on the record the reviewers pushed, and ends with exit 0.
    (gate4,) = [name for name, job in jobs.items() for step in job["steps"] if "gates/test_gate4_readiness.py" in step.get("run", "")]
    assert "rehearse" in ancestors(jobs, gate4)
    assert "set +e" not in yaml.safe_dump(jobs[gate4])
    steps = [argv for _, argv in run_commands({"jobs": {gate4: jobs[gate4]}})]
    fetch = [argv for argv in steps if argv[:2] == ["git", "fetch"]]
    assert fetch and any(REF.startswith(spec.split(":")[-1].rstrip("*")) for argv in fetch for spec in argv[3:]), fetch
    assert steps.index(fetch[0]) < next(i for i, argv in enumerate(steps) if argv[0] == "pytest")
    # The rehearsal job accepts 10 (awaiting sign-off).
    (protocol,) = [step for step in jobs["rehearse"]["steps"] if "pytest --predeploy-release" in step.get("run", "")]
    assert '[ "$status" = 10 ]' in protocol["run"]
    header = " ".join(WORKFLOW.read_text().split("\nname:")[0].replace("#", " ").split())
    assert "paid GitHub plan" in header and "no-go" in header and BRANCH in header


def test_the_workflow_works_in_a_repository_adopted_with_predeploy_init(tmp_path: Path, workflow: dict[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # What the workflow runs, in a repository set up by `predeploy init` alone: the gate module it
    # names exists there, and `predeploy advisories update` finds where to write (no --to).
    from pytest_predeploy.tooling.cli import _advisories_target
    from pytest_predeploy.tooling.scaffold import init_project

    init_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    parser = predeploy_parser()
    for _, argv in run_commands(workflow):
        if argv[0] == "pytest":
            for arg in argv[1:]:
                if not arg.startswith("--"):
                    assert (tmp_path / arg).is_file(), f"an adopted repository has no {arg}"
        elif argv[:3] == ["predeploy", "advisories", "update"]:
            target = _advisories_target(parser.parse_args(argv[1:]))
            assert isinstance(target, Path) and target.suffix == ".zip"
