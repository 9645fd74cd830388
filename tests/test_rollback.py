"""The rollback rehearsal (step 3.1): rollback per service with both strategies, verification,
measured recovery, roll-forward; failures naming the service; and rollback_backend.sh killed
with SIGKILL at each of its steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import read_artifact
from pytest_predeploy.rehearsal.deploy import rehearse_deployment
from pytest_predeploy.rollback.rollback import RollbackReport, rehearse_rollback, rollback_problems
from pytest_predeploy.targets.local import service_url
from pytest_predeploy.targets.local.target import CHECKPOINTS, MANIFEST
from pytest_predeploy.targets.probe import check_release
from tests.staging_support import SCRIPTS, StagingProject, script_env, service, staging  # noqa: F401  (fixture)


class HttpSmoke:
    """A smoke runner for these tests: each selected service answers healthy on the release."""

    def __init__(self, project: StagingProject, fail_label: str | None = None) -> None:
        self.project, self.fail_label = project, fail_label
        self.calls: list[tuple[str, str | None, str]] = []

    def __call__(self, label: str, select: str | None, release: str) -> bool:
        self.calls.append((label, select, release))
        assert self.project.config is not None and select is not None
        url = service_url(self.project.config, "staging", select)
        return label != self.fail_label and url is not None and not check_release(url, release).problems


def deployed(project: StagingProject, **sections: object) -> StagingProject:
    """Staging on the candidate v2 after a successful rehearsal over v1."""
    project.write(**sections)  # type: ignore[arg-type]
    report = rehearse_deployment(project.context("v2"))
    assert report.outcome == "succeeded", report.error
    return project


def test_rollback_rehearsal_with_both_strategies_measures_recovery_and_rolls_forward(staging: StagingProject) -> None:
    deployed(staging, rollback={"recovery_target_seconds": 60})
    worker_slots = {slot: staging.target("worker").running(slot) for slot in ("blue", "green")}
    smoke = HttpSmoke(staging)
    lines: list[str] = []
    ctx = staging.context("v2", announcer=lines.append)

    report = rehearse_rollback(ctx, smoke)

    assert rollback_problems(report) == []
    assert read_artifact(ctx.artifact(names.ROLLBACK_REPORT), RollbackReport) == report
    assert [(s.service, s.strategy, s.status) for s in report.services] == [("worker", "blue_green", "passed"), ("api", "restart", "passed")]
    for record in report.services:
        assert record.switch_seconds is not None and record.recovery_seconds is not None
        assert record.recovery_seconds >= record.switch_seconds and record.within_target
        assert record.smoke == "passed" and record.rolled_forward
        assert record.final is not None and (record.final.release, record.final.healthy) == ("v2", True)
        assert [step.name for step in record.steps] == [
            "rollback",
            "verify rollback",
            "smoke after rollback",
            "roll forward",
            "verify roll forward",
            "smoke after roll forward",
        ]
        assert all(step.status == "passed" and step.ended_at >= step.started_at for step in record.steps)
    assert smoke.calls == [
        ("rollback-worker", "worker", "v1"),
        ("rollforward-worker", "worker", "v2"),
        ("rollback-api", "api", "v1"),
        ("rollforward-api", "api", "v2"),
    ]
    # Blue/green rolled back and forward by switching slots: the same two processes throughout.
    assert {slot: staging.target("worker").running(slot) for slot in ("blue", "green")} == worker_slots
    assert "[AUTOMATION] rollback_backend.sh executed: success (api)" in lines
    assert report.summary_line().startswith("2/2 services rolled back to v1")


def test_without_roll_forward_staging_ends_on_the_previous_release(staging: StagingProject) -> None:
    deployed(staging, rollback={"roll_forward": False})
    report = rehearse_rollback(staging.context("v2"), None)
    assert rollback_problems(report) == []
    assert all(s.final is not None and s.final.release == "v1" and s.rolled_forward is None and s.smoke == "not run" for s in report.services)


def _remove_previous(project: StagingProject) -> None:
    release = project.target("api").releases / "v1"
    for path in sorted(release.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    release.rmdir()


def _make_previous(fault: str):  # type: ignore[no-untyped-def]
    def change(project: StagingProject) -> None:
        manifest = project.target("api").releases / "v1" / MANIFEST
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "fault": fault}))

    return change


@pytest.mark.parametrize(
    "break_previous, expected",
    [
        (
            _remove_previous,
            "api: rollback to v1 failed: rollback_backend.sh failed (exit 3): [staging] error: api: cannot roll back to v1: it was never deployed",
        ),
        (_make_previous("crash"), "api: rollback to v1 failed: rollback_backend.sh failed (exit 1): [staging] error: api: release v1 crashed at start"),
        (
            _make_previous("unhealthy"),
            "api: rollback to v1 failed: rollback_backend.sh failed (exit 1): [staging] error: api: release v1 missed its health deadline of 1s",
        ),
    ],
    ids=["target-missing", "previous-crashes", "health-deadline-missed"],
)
def test_a_failed_rollback_names_the_service_and_restores_the_candidate(staging: StagingProject, break_previous, expected: str) -> None:  # type: ignore[no-untyped-def]
    deployed(staging, services=[service("api", health_timeout="1s")])
    break_previous(staging)

    report = rehearse_rollback(staging.context("v2"), HttpSmoke(staging))

    problems = rollback_problems(report)
    assert len(problems) == 1 and problems[0].startswith(expected)
    api = next(s for s in report.services if s.service == "api")
    assert api.status == "failed" and api.recovery_seconds is None and api.within_target is None
    assert [step.name for step in api.steps] == ["rollback", "restore candidate", "verify restore"]
    assert api.final is not None and (api.final.release, api.final.healthy) == ("v2", True)
    assert [(r.slot, r.release) for r in staging.target("api").records()] == [("main", "v2")]  # nothing else left running


def test_a_red_smoke_subset_or_a_missed_recovery_target_fails_naming_the_service(staging: StagingProject) -> None:
    deployed(staging, services=[service("api")], rollback={"recovery_target_seconds": 0.001})
    report = rehearse_rollback(staging.context("v2"), HttpSmoke(staging))
    assert rollback_problems(report) == [f"api: recovery took {report.services[0].recovery_seconds:.1f}s, over the target of 0.001s"]

    report = rehearse_rollback(staging.context("v2"), HttpSmoke(staging, fail_label="rollback-api"))
    assert rollback_problems(report) == ["api: smoke after rollback failed: smoke subset failed"]
    assert report.services[0].final is not None and report.services[0].final.release == "v2"


def _wait_for_pause(process: subprocess.Popen[str], checkpoint: str) -> None:
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    for line in process.stderr:
        if line.strip() == f"[staging] paused at {checkpoint}":
            return
        assert time.monotonic() < deadline
    pytest.fail(f"the script ended before reaching {checkpoint}")


def _current_is_complete(project: StagingProject) -> str:
    target = project.target("api")
    assert os.path.lexists(target.current), "current is missing"
    resolved = Path(os.path.realpath(target.current))
    assert resolved.parent == target.releases.resolve() and (resolved / MANIFEST).is_file(), f"current points to {resolved}"
    return resolved.name


@pytest.mark.parametrize("strategy, checkpoints", [("restart", [c for c in CHECKPOINTS if c != "built"]), ("blue_green", ["locked", "linking", "switched"])])
def test_rollback_script_killed_at_each_step_leaves_current_complete_and_the_next_run_recovers(
    staging: StagingProject, strategy: str, checkpoints: list[str]
) -> None:
    config = staging.write(services=[service("api", strategy=strategy)])
    for tag in ("v1", "v2"):
        assert staging.script("deploy_backend.sh", "--release", tag).returncode == 0
    for index, checkpoint in enumerate(checkpoints):
        # Back and forth between the two releases: each run is a rollback from the other one.
        target, other = ("v1", "v2") if index % 2 == 0 else ("v2", "v1")
        process = subprocess.Popen(
            ["bash", str(SCRIPTS / "rollback_backend.sh"), "--env", "staging", "--release", target, "--config", str(staging.path)],
            env=script_env(pause=checkpoint),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _wait_for_pause(process, checkpoint)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

        assert _current_is_complete(staging) in {target, other}, checkpoint
        again = staging.script("rollback_backend.sh", "--release", target)
        assert again.returncode in (0, 5), f"{checkpoint}: {again.stderr}"
        assert _current_is_complete(staging) == target
        url = service_url(config, "staging", "api")
        assert url is not None and check_release(url, target).problems == [], checkpoint
        assert [p.name for p in staging.target("api").dir.rglob("*") if ".tmp-" in p.name or p.name.startswith(".build-")] == []
