"""What a run leaves about itself: ``predeploy-run.json`` (gate outcomes, who ran the rehearsal)
and a line in the run journal when it starts and when it ends (see
:mod:`pytest_predeploy.verdict.journal`: the record Gate 4 checks, which no package restores)."""

from __future__ import annotations

import uuid
from pathlib import Path

from pytest_predeploy.core.artifacts import RUN_STATE
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.core.runstate import GateRecord, RunState, current_user, git_commit, load_state, save_state
from pytest_predeploy.harness.controller import GateController
from pytest_predeploy.harness.gates import cannot_write
from pytest_predeploy.verdict import journal


class RunRecord:
    """The run state file and the journal of one run."""

    def __init__(self, artifacts: Path, release: str, previous_release: str | None, env: str, project_dir: Path, config_digest: str) -> None:
        self.artifacts = artifacts
        self.release = release
        self.previous_release = previous_release
        self.env = env
        self.project_dir = project_dir
        self.config_digest = config_digest
        self.run_id = uuid.uuid4().hex
        #: Files this run could not write (disk full, read-only folder), shown in the summary.
        self.write_problems: list[str] = []

    def journal(self, event: str, gates: dict[str, str], sealed: str | None = None) -> None:
        try:
            journal.append(self.artifacts, event, self.run_id, self.release, gates, sealed)
        except OSError as exc:
            self.write_problems.append(f"run journal: {cannot_write(exc, self.artifacts)}")

    def save_state(self, controller: GateController, prefix: str = "") -> None:
        state = load_state(self.artifacts) if not prefix else None
        if state is None or state.release != self.release:
            state = RunState(
                release=self.release,
                previous_release=self.previous_release,
                environment=self.env,
                git_commit=git_commit(self.project_dir),
                config_digest=self.config_digest,
                run_by=current_user(),
            )
        for gate in controller.gates.values():
            if gate.status == "not run":
                continue
            state.gates[f"gate{gate.number}"] = GateRecord(
                name=gate.name, status=gate.status, reason=gate.reason, figures=gate.figures, advisories=gate.advisories
            )
        if 2 in controller.gates and controller.gates[2].started:
            state.run_by = current_user()
        state.generated_at = utcnow()
        try:
            save_state(self.artifacts, state, prefix + RUN_STATE)
        except OSError as exc:
            self.write_problems.append(f"run state: {cannot_write(exc, self.artifacts)}")
