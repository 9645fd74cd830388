"""Operational readiness: runbooks current for the release, on-call covers the window, escalation."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.rollback.operational import check_operational_readiness, operational_problems, read_operational

ROOT = Path(__file__).parents[1]
WINDOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def make_config(root: Path, operational: dict[str, Any]) -> ProjectConfig:
    data = {
        "version": 1,
        "project": "ops-test",
        "previous_release": "v1.1",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "operational": operational,
    }
    path = root / "predeploy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def runbook(root: Path, name: str, reviewed_for: str | None) -> str:
    front = f"---\nowner: Alex Ops\nreviewed_for: {reviewed_for}\nlast_reviewed: 2026-11-24\n---\n" if reviewed_for else ""
    (root / name).write_text(front + f"# Runbook {name}\n\nRestart it.\n")
    return name


def schedule(root: Path, body: dict[str, Any]) -> str:
    (root / "oncall.yaml").write_text(yaml.safe_dump(body))
    return "oncall.yaml"


WEEKLY = {"rotations": [{"name": "primary", "start": "2026-01-05T09:00:00Z", "shift": "7d", "people": ["Ana", "Ben", "Cy"]}]}
ESCALATION = {"levels": [{"level": 1, "who": "primary", "contact": "pager"}, {"level": 2, "who": "lead", "contact": "phone", "after": "15m"}]}


def ready_project(root: Path, **overrides: Any) -> ProjectConfig:
    """A project whose operational files are all current; ``overrides`` replace some of them."""
    (root / "escalation.yaml").write_text(yaml.safe_dump(ESCALATION))
    settings: dict[str, Any] = {"escalation": "escalation.yaml", "window": "4h", **overrides}
    if "runbooks" not in overrides:
        settings["runbooks"] = [runbook(root, "api.md", "v1.2")]
    if "oncall" not in overrides:
        settings["oncall"] = schedule(root, WEEKLY)
    return make_config(root, settings)


def check(config: ProjectConfig, root: Path, release: str = "v1.2", previous: str | None = "v1.1") -> Any:
    return check_operational_readiness(config, release, previous, root, window_start=WINDOW)


def test_current_runbooks_covered_window_and_matrix_pass_and_read_back(tmp_path: Path) -> None:
    result = check(ready_project(tmp_path), tmp_path)
    assert operational_problems(result) == []
    checklist = tmp_path / names.OPERATIONAL_CHECKLIST
    text = checklist.read_text()
    assert "| [x] | runbook | `api.md` | ok |" in text and "reviewed_for v1.2" in text
    assert "| [x] | on-call | `oncall.yaml` | ok | window covered; on call: Cy (primary) |" in text  # week 47 of the rotation: 47 % 3 == 2
    assert read_operational(checklist) == result


def test_on_call_names_who_is_on_call_across_the_window(tmp_path: Path) -> None:
    # Shifts start Mondays 09:00; a window from Monday 07:00 to 11:00 spans a handover.
    config = ready_project(tmp_path)
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    result = check_operational_readiness(config, "v1.2", "v1.1", tmp_path, window_start=monday)
    oncall = next(c for c in result.checks if c.kind == "on-call")
    weeks = (monday - datetime(2026, 1, 5, 9, tzinfo=UTC)) // timedelta(days=7)
    people = ["Ana", "Ben", "Cy"]
    assert oncall.status == "ok"
    assert oncall.detail == f"window covered; on call: {people[weeks % 3]} (primary), {people[(weeks + 1) % 3]} (primary)"


@pytest.mark.parametrize(
    ("body", "gap"),
    [
        (
            {
                "shifts": [
                    {"who": "Ana", "start": "2026-12-01T20:00:00Z", "end": "2026-12-01T23:00:00Z"},
                    {"who": "Ben", "start": "2026-12-01T23:30:00Z", "end": "2026-12-02T06:00:00Z"},
                ]
            },
            "2026-12-01T23:00:00+00:00 to 2026-12-01T23:30:00+00:00",
        ),
        ({"rotations": [{**WEEKLY["rotations"][0], "until": "2026-12-01T23:00:00Z"}]}, "2026-12-01T23:00:00+00:00 to 2026-12-02T02:00:00+00:00"),
        ({"rotations": [{**WEEKLY["rotations"][0], "start": "2026-12-02T00:00:00Z"}]}, "2026-12-01T22:00:00+00:00 to 2026-12-02T00:00:00+00:00"),
    ],
)
def test_a_gap_in_on_call_coverage_of_the_window_is_reported(tmp_path: Path, body: dict[str, Any], gap: str) -> None:
    config = ready_project(tmp_path, oncall=schedule(tmp_path, body))
    (problem,) = operational_problems(check(config, tmp_path))
    assert problem.startswith("on-call oncall.yaml: gap:") and gap in problem


def test_runbooks_reviewed_for_another_release_or_missing_are_reported(tmp_path: Path) -> None:
    config = ready_project(tmp_path, runbooks=[runbook(tmp_path, "api.md", "v1.1"), runbook(tmp_path, "worker.md", None), "gone.md"])
    problems = operational_problems(check(config, tmp_path))
    assert problems == [
        "runbook api.md: stale: front matter says reviewed_for v1.1, not v1.2, last_reviewed 2026-11-24, owner Alex Ops",
        "runbook worker.md: stale: previous release v1.1 is not a git tag here, and the runbook has no 'reviewed_for:' front matter",
        "runbook gone.md: missing: no runbook at gone.md",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_with_a_git_tag_for_the_previous_release_history_decides(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "ops@example.invalid")
    git("config", "user.name", "Ops")
    config = ready_project(tmp_path, runbooks=[runbook(tmp_path, "api.md", None)])  # no front matter: git alone decides
    git("add", "-A")
    git("commit", "-q", "-m", "v1.1")
    git("tag", "v1.1")
    (problem,) = operational_problems(check(config, tmp_path))
    assert problem == "runbook api.md: stale: unchanged since tag v1.1"

    (tmp_path / "api.md").write_text("# Runbook api.md\n\nRestart it, then check /healthz.\n")
    result = check(config, tmp_path)
    assert operational_problems(result) == [] and "uncommitted" in result.checks[0].detail

    git("commit", "-q", "-am", "runbook for v1.2")
    result = check(config, tmp_path)
    assert operational_problems(result) == [] and "1 commit(s)" in result.checks[0].detail


def test_missing_or_malformed_schedule_and_matrix_are_reported(tmp_path: Path) -> None:
    (tmp_path / "escalation.yaml").write_text("levels: []\n")
    config = make_config(tmp_path, {"runbooks": [runbook(tmp_path, "api.md", "v1.2")], "oncall": "none.yaml", "escalation": "escalation.yaml"})
    problems = operational_problems(check(config, tmp_path))
    assert problems[0] == "on-call none.yaml: missing: no on-call schedule at none.yaml"
    assert problems[1].startswith("escalation escalation.yaml: malformed:") and "levels" in problems[1]
    config = make_config(tmp_path, {})
    assert [p.split(":")[0] for p in operational_problems(check(config, tmp_path))] == [
        "runbook (not configured)",
        "on-call (not configured)",
        "escalation (not configured)",
    ]


def test_a_checklist_without_its_embedded_result_is_an_artifact_error(tmp_path: Path) -> None:
    check(ready_project(tmp_path), tmp_path)
    checklist = tmp_path / names.OPERATIONAL_CHECKLIST
    checklist.write_text(checklist.read_text().replace('"status": "ok"', '"status": "fine"', 1))
    with pytest.raises(ArtifactError, match="status"):
        read_operational(checklist)
    checklist.write_text("# edited by hand\n")
    with pytest.raises(ArtifactError, match="no embedded result"):
        read_operational(checklist)
    with pytest.raises(ArtifactError, match="missing"):
        read_operational(tmp_path / "nothing.md")


def test_the_demo_runbooks_on_call_and_escalation_are_current(tmp_path: Path) -> None:
    config = load_config(ROOT / "predeploy.yaml")
    result = check_operational_readiness(config, "v1.2", config.previous_release, tmp_path)
    assert operational_problems(result) == []
    assert [c.kind for c in result.checks] == ["runbook", "runbook", "on-call", "escalation"]
