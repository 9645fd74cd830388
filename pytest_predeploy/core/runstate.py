"""``predeploy-run.json``: what the runs against one artifacts dir found, gate by gate.

Gate 4 can be re-run alone after sign-off; it needs to know that gates 1-3 passed for this
release in the run that produced the package, and who ran that rehearsal (self-approval check).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from pytest_predeploy.core.artifacts import RUN_STATE, ArtifactModel, read_artifact, write_artifact
from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.core.fields import StrictModel, UtcDatetime, utcnow
from pytest_predeploy.core.git import run_git


class GateRecord(StrictModel):
    """The last outcome of one gate."""

    name: str = Field(description="Gate name.")
    status: str = Field(
        description="passed (every MUST test of the gate passed in that run), failed, halted, interrupted (the run was cancelled while the gate was under way), awaiting sign-off or not run."
    )
    reason: str = Field("", description="Why it did not pass, in full (one line per blocking problem).")
    figures: list[str] = Field(default_factory=list, description="Key figures the gate's tests recorded.")
    advisories: list[str] = Field(default_factory=list, description="GUIDELINE misses.")
    at: UtcDatetime = Field(default_factory=utcnow, description="When this outcome was recorded.")


class RunState(ArtifactModel):
    """Gate outcomes and run facts for the artifacts dir."""

    step: str = Field("protocol", description="The protocol step that produced the artifact.")
    previous_release: str | None = Field(None, description="The release staging returns to on rollback.")
    environment: str = Field(description="The rehearsal environment.")
    git_commit: str | None = Field(None, description="Commit of the project the run was made from.")
    config_digest: str = Field(description="sha256 of predeploy.yaml.")
    run_by: str = Field(description="Who ran the rehearsal (used to forbid self-approval).")
    run_by_source: str = Field("", description="How run_by was determined: the CI platform's actor variable, or a self-declared local name.")
    gates: dict[str, GateRecord] = Field(default_factory=dict, description="gateN -> last outcome.")


@dataclass(frozen=True)
class Operator:
    """Who ran the rehearsal, and how that was established."""

    name: str
    #: How the name was determined, said in the run state and the report.
    source: str


#: CI platforms that name the person who started the job, by (platform variable, actor variable).
#: These are set by the platform itself; GitHub Actions refuses a workflow's attempt to overwrite
#: a GITHUB_* variable, so a job cannot claim another actor through them the way it can through
#: PREDEPLOY_OPERATOR.
PLATFORMS: tuple[tuple[str, str, str], ...] = (
    ("GitHub Actions", "GITHUB_ACTIONS", "GITHUB_ACTOR"),
    ("GitLab CI", "GITLAB_CI", "GITLAB_USER_LOGIN"),
    ("Buildkite", "BUILDKITE", "BUILDKITE_BUILD_CREATOR_EMAIL"),
    ("CircleCI", "CIRCLECI", "CIRCLE_USERNAME"),
)


def identify_operator() -> Operator:
    """The rehearsal's operator: the actor a CI platform names wins over anything the job sets;
    locally, $PREDEPLOY_OPERATOR, else the login ($USER, $LOGNAME, the password database), which
    whoever runs the command chooses: self-approval is then caught only for honest operators."""
    for platform, flag, actor in PLATFORMS:
        if os.environ.get(flag, "").casefold() == "true" and os.environ.get(actor):
            return Operator(os.environ[actor], f"{platform} (${actor}, set by the platform)")
    if os.environ.get("PREDEPLOY_OPERATOR"):
        return Operator(os.environ["PREDEPLOY_OPERATOR"], "$PREDEPLOY_OPERATOR (self-declared: anyone running the command can set it)")
    for name in ("USER", "LOGNAME"):
        if os.environ.get(name):
            return Operator(os.environ[name], f"${name} (the local login, self-declared: anyone running the command can set it)")
    try:
        return Operator(getpass.getuser(), "the local login (self-declared)")
    except (KeyError, OSError):
        return Operator("unknown", "not determined")


def current_user() -> str:
    return identify_operator().name


def git_commit(directory: Path) -> str | None:
    done = run_git(directory, "rev-parse", "HEAD", timeout=10)
    return done.stdout.strip() if done.ok and done.stdout.strip() else None


def load_state(artifacts: Path) -> RunState | None:
    path = artifacts / RUN_STATE
    if not path.exists():
        return None
    try:
        return read_artifact(path, RunState)
    except ArtifactError:
        return None


def save_state(artifacts: Path, state: RunState, name: str = RUN_STATE) -> None:
    write_artifact(artifacts / name, state)
