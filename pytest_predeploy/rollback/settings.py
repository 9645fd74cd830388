"""Gate 3's ``operational`` section of ``predeploy.yaml``, apart from the check that reads the
runbooks (:mod:`.operational`, which imports it from here): loading the configuration, which
every protocol run does first, imports only this model."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from pytest_predeploy.core.fields import ConfigPath, Duration, StrictModel, UtcDatetime


class OperationalConfig(StrictModel):
    """Runbooks, on-call schedule and escalation matrix checked by Gate 3's guideline."""

    runbooks: list[ConfigPath] = Field(
        default_factory=list,
        description="Runbook files that must exist and be updated for the release (see the rules in docs: git history since the previous release's tag, else 'reviewed_for: <release>' front matter).",
    )
    oncall: ConfigPath | None = Field(None, description="On-call schedule (YAML: 'rotations' with start, shift, people; and/or 'shifts' with who, start, end).")
    escalation: ConfigPath | None = Field(None, description="Escalation matrix: YAML with 'levels' (who, contact), or a Markdown document.")
    window: Duration = Field(timedelta(hours=4), description="Length of the production deployment window that on-call must cover.")
    window_start: UtcDatetime | None = Field(None, description="Planned start of the deployment window; default: when the check runs.")
