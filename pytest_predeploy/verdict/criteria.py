"""The protocol, declared once: each gate's MUST and GUIDELINE criteria, the artifact each one
judges and the function that judges it.

Everything that needs to know what the protocol requires derives from :data:`CRITERIA`:

- the gate modules bind their tests to it (``pytest.mark.must("parity")``) and are checked
  against it at collection (an unknown or doubly bound criterion is a usage error);
- after a bound MUST test passes, the harness applies the declared judge to the artifact itself,
  so a gate test that stops asserting cannot pass a criterion the evidence fails;
- the verdict of a run is this declaration applied to what the run judged: a criterion that was
  not judged in this run (deselected, skipped, never called, not collected) is never GO;
- Gate 4 run alone judges the evidence sealed in the package with the same judges.

A new MUST criterion: one :class:`Criterion` here (its judge beside the step that writes the
artifact), and one test in its gate module marked ``pytest.mark.must("<key>")``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from pytest_predeploy.core import artifacts as names
from pytest_predeploy.core.artifacts import ARTIFACTS, ArtifactModel, describe_validation_error
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.protocol import GATES, READINESS_GATE

# Each judge imports its step's code when it first judges, and the model is the one the artifact
# table names (core.artifacts.ARTIFACTS), imported then too: every protocol run loads this
# declaration, and a run imports only the steps it judges.
if TYPE_CHECKING:
    from pytest_predeploy.intake.approvals import IntakeReport
    from pytest_predeploy.intake.parity import ParityReport
    from pytest_predeploy.rehearsal.contract import ApiContractReport
    from pytest_predeploy.rehearsal.deploy import DeploymentReport
    from pytest_predeploy.rehearsal.settings import SmokeConfig
    from pytest_predeploy.rehearsal.smoke import TestResultsReport
    from pytest_predeploy.rollback.rollback import RollbackReport
    from pytest_predeploy.security import SecurityReport

Kind = Literal["must", "guideline"]


class JudgeProject(Protocol):
    """What the judges read from the project's configuration."""

    @property
    def smoke(self) -> SmokeConfig: ...


Judge = Callable[[Any, JudgeProject], list[str]]


@dataclass(frozen=True)
class Criterion:
    """One criterion of one gate."""

    key: str
    gate: int
    kind: Kind
    title: str
    #: The artifact the criterion judges.
    artifact: str
    #: The artifact's judge: a MUST criterion with one is judged again by the harness after its
    #: test passed (the artifact read as its model, :attr:`model`), and from the sealed package
    #: when Gate 4 runs alone. The readiness criteria have none: the package and the sign-offs
    #: are judged by the run itself.
    judge: Judge | None = None

    @property
    def label(self) -> str:
        return f"Gate {self.gate} {self.kind.upper()} '{self.key}' ({self.title})"

    @property
    def model(self) -> type[ArtifactModel] | None:
        """The model the judge reads the artifact as (the artifact table's), None without a judge."""
        return _model_of(self.artifact) if self.judge is not None else None

    @property
    def sealed(self) -> bool:
        """Judged from the package's evidence when Gate 4 runs alone."""
        return self.kind == "must" and self.gate < READINESS_GATE and self.judge is not None


def _model_of(artifact: str) -> type[ArtifactModel]:
    declared = next(a.model for a in ARTIFACTS if a.name == artifact and a.model is not None)
    module, _, name = declared.partition(":")
    model: type[ArtifactModel] = getattr(importlib.import_module(module), name)
    return model


def _own_verdict(flag: bool, what: str) -> list[str]:
    # A report whose own verdict is "blocked" while its items list nothing blocking was edited
    # or is inconsistent: either way it is not evidence of a pass.
    return [] if flag else [f"the report's own verdict: {what}"]


def _intake(report: IntakeReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.intake.approvals import intake_problems

    return intake_problems(report) or _own_verdict(report.approved, "approved is false")


def _parity(report: ParityReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.intake.parity import parity_problems

    return parity_problems(report) or _own_verdict(report.passed, "passed is false")


def _deployment(report: DeploymentReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.rehearsal.deploy import deployment_problems

    return deployment_problems(report) or _own_verdict(report.outcome == "succeeded", f"outcome is {report.outcome}")


def _smoke(report: TestResultsReport, project: JudgeProject) -> list[str]:
    from pytest_predeploy.rehearsal.smoke import smoke_problems

    return smoke_problems(report, project.smoke.min_coverage)


def _contract(report: ApiContractReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.rehearsal.contract import contract_problems

    return contract_problems(report)


def _rollback(report: RollbackReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.rollback.rollback import rollback_problems

    return rollback_problems(report) or _own_verdict(report.outcome == "passed", f"outcome is {report.outcome}")


def _security(report: SecurityReport, _: JudgeProject) -> list[str]:
    from pytest_predeploy.security import security_problems

    return security_problems(report) or _own_verdict(not report.blocking, "blocking is true")


#: PROTOCOL-10's criteria, gate by gate.
CRITERIA: tuple[Criterion, ...] = (
    Criterion("approvals", 1, "must", "upstream approvals present, approved, for this release, unexpired", names.INTAKE_REPORT, _intake),
    Criterion("parity", 1, "must", "staging parity: no critical drift", names.PARITY_REPORT, _parity),
    Criterion("data-refresh", 1, "guideline", "test data and feature flags refreshed", names.DATA_REFRESH),
    Criterion("deployment", 2, "must", "every service deployed to staging", names.DEPLOYMENT_REPORT, _deployment),
    Criterion("smoke", 2, "must", "smoke and acceptance suites passed, coverage recorded", names.TEST_RESULTS, _smoke),
    Criterion("contract", 2, "must", "no unwaived breaking change to the previous release's API contract", names.API_CONTRACT_REPORT, _contract),
    Criterion("observability", 2, "guideline", "observability baseline captured", names.OBSERVABILITY_BASELINE),
    Criterion("rollback", 3, "must", "rollback rehearsed for every service within the recovery target", names.ROLLBACK_REPORT, _rollback),
    Criterion("security", 3, "must", "security, licence and compliance scans cleared or waived", names.SECURITY_REPORT, _security),
    Criterion("operational", 3, "guideline", "runbooks, on-call and escalation current", names.OPERATIONAL_CHECKLIST),
    Criterion("package", 4, "must", "package compiled, manifest indexes every artifact with sha256", names.MANIFEST),
    Criterion("signoffs", 4, "must", "required sign-offs recorded on the package digest", names.READINESS_APPROVAL),
    Criterion("checklist", 4, "guideline", "deployment checklist updated from the rehearsal", names.DEPLOYMENT_CHECKLIST),
)

BY_KEY: dict[str, Criterion] = {criterion.key: criterion for criterion in CRITERIA}
#: The criterion Gate 4 leaves pending while the package waits for its sign-offs.
SIGNOFFS = "signoffs"
#: The criterion whose test builds the package (sealed at the end of a full run).
PACKAGE = "package"


def criteria_of(gate: int) -> list[Criterion]:
    return [criterion for criterion in CRITERIA if criterion.gate == gate]


def sealed_criteria() -> list[Criterion]:
    """The MUST criteria whose evidence the package seals and Gate 4 alone judges again."""
    return [criterion for criterion in CRITERIA if criterion.sealed]


def binding_problem(key: str, gate: int, kind: str) -> str | None:
    """Why a gate test may not bind ``key`` (None: it may)."""
    criterion = BY_KEY.get(key)
    if criterion is None:
        known = ", ".join(c.key for c in CRITERIA)
        return f"the protocol declares no criterion '{key}' (declared: {known})"
    if criterion.gate != gate or criterion.kind != kind:
        return f"'{key}' is a {criterion.kind.upper()} criterion of Gate {criterion.gate} ({GATES[criterion.gate]}), not a {kind.upper()} of Gate {gate}"
    return None


def judge_evidence(criterion: Criterion, raw: bytes | None, project: JudgeProject, where: str) -> list[str]:
    """Every reason the evidence of ``criterion`` (the artifact's bytes, None when absent) fails
    it, one line each naming the file, where it was read and the gate."""
    name = criterion.artifact
    model = criterion.model
    if model is None or criterion.judge is None:
        return []
    if raw is None:
        return [f"{name} is missing {where}"]
    try:
        report = model.model_validate(json_loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{name} {where}: not valid JSON ({exc})"]
    except ValidationError as exc:
        return [f"{name} {where}: does not match {model.__name__}: {describe_validation_error(exc)}"]
    return [f"{name} {where} fails Gate {criterion.gate}: {problem}" for problem in criterion.judge(report, project)]
