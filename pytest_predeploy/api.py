"""The stable surface of pytest-predeploy for gate modules, custom steps and scripts.

Everything a gate module (``gates/test_gate<N>_<name>.py``), a custom step or a step script may
use is importable from here (and from ``pytest_predeploy`` itself); the modules behind it are
internal and may move between releases. Names are added here, and removed only with a release
note (``CHANGELOG.md``; ``tests/test_api_surface.py`` fails until both say the same).

- Gate helpers: :func:`load` (read and validate an artifact, typed as the model it is read as),
  :func:`require` (fail the test with every problem listed), :func:`no_data`, :func:`await_signoff`,
  the evidence helpers (``show_*``, :class:`Evidence`, :func:`bar_chart_svg`), and the types of the
  fixtures gates take: :class:`GateContext` (the ``predeploy`` fixture, read-only), :class:`Evidence`,
  :class:`SignoffStatus` (``signoffs``), :class:`ChecklistResult` (``deployment_checklist``).
- Each step's report model and its ``*_problems`` function, which says why the report fails
  its gate (one sentence per problem).
- The step entry points the shipped scripts call (:func:`compare_environments`,
  :func:`run_smoke_tests`, :func:`run_security_audit`) and the script kit
  (:func:`add_common_arguments`, :func:`load_context`, :func:`run_main`,
  :func:`interrupt_on_sigterm`), plus the artifact writer and names they use.
- The errors a step may raise (:class:`ConfigError`, :class:`StepError`, ...).
- For smoke suites: :func:`smoke_request`, the HTTP client whose calls count towards endpoint
  coverage for services without a request counter (:class:`HttpResponse` is its answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_predeploy.core.artifacts import OBSERVABILITY_METRICS, TRANSCRIPTS_DIR, ArtifactModel, read_artifact, write_artifact
from pytest_predeploy.core.errors import EXIT_USAGE, ArtifactError, ConfigError, PredeployError, StepError
from pytest_predeploy.harness.context import RunContext
from pytest_predeploy.harness.evidence import (
    Evidence,
    bar_chart_svg,
    show_deployment,
    show_intake,
    show_observability,
    show_parity,
    show_rollback,
    show_security,
    show_signoffs,
    show_smoke,
)
from pytest_predeploy.harness.gates import await_signoff, load, no_data, require
from pytest_predeploy.harness.gateview import GateContext
from pytest_predeploy.intake.approvals import IntakeReport, intake_problems
from pytest_predeploy.intake.parity import ParityReport, compare_environments, parity_problems, summary_text
from pytest_predeploy.intake.refresh import RefreshResult, read_refresh, refresh_problems
from pytest_predeploy.readiness.checklist import ChecklistResult, checklist_problems
from pytest_predeploy.readiness.package import Manifest, package_readiness
from pytest_predeploy.readiness.signoff import SignoffStatus
from pytest_predeploy.rehearsal.contract import ApiContractReport, contract_problems
from pytest_predeploy.rehearsal.deploy import DeploymentReport, deployment_problems
from pytest_predeploy.rehearsal.observability import ObservabilityResult, observability_problems
from pytest_predeploy.rehearsal.requestlog import Response as HttpResponse
from pytest_predeploy.rehearsal.requestlog import request as smoke_request
from pytest_predeploy.rehearsal.smoke import TestResultsReport, run_smoke_tests, smoke_problems
from pytest_predeploy.rollback.operational import OperationalResult, operational_problems, read_operational
from pytest_predeploy.rollback.rollback import RollbackReport, rollback_problems
from pytest_predeploy.security import SecurityReport, security_problems
from pytest_predeploy.tooling.scriptkit import ScriptContext, add_common_arguments, interrupt_on_sigterm, load_context, run_main

if TYPE_CHECKING:
    from pytest_predeploy.security.audit import run_security_audit

__all__ = [
    "ApiContractReport",
    "contract_problems",
    "HttpResponse",
    "smoke_request",
    "EXIT_USAGE",
    "OBSERVABILITY_METRICS",
    "TRANSCRIPTS_DIR",
    "ArtifactError",
    "ArtifactModel",
    "ChecklistResult",
    "ConfigError",
    "DeploymentReport",
    "Evidence",
    "GateContext",
    "IntakeReport",
    "Manifest",
    "ObservabilityResult",
    "OperationalResult",
    "ParityReport",
    "PredeployError",
    "RefreshResult",
    "RollbackReport",
    "RunContext",
    "ScriptContext",
    "SecurityReport",
    "SignoffStatus",
    "StepError",
    "TestResultsReport",
    "add_common_arguments",
    "await_signoff",
    "bar_chart_svg",
    "checklist_problems",
    "compare_environments",
    "deployment_problems",
    "intake_problems",
    "interrupt_on_sigterm",
    "load",
    "load_context",
    "no_data",
    "observability_problems",
    "operational_problems",
    "package_readiness",
    "parity_problems",
    "read_artifact",
    "read_operational",
    "read_refresh",
    "refresh_problems",
    "require",
    "rollback_problems",
    "run_main",
    "run_security_audit",
    "run_smoke_tests",
    "security_problems",
    "show_deployment",
    "show_intake",
    "show_parity",
    "show_rollback",
    "show_security",
    "show_signoffs",
    "show_observability",
    "show_smoke",
    "smoke_problems",
    "summary_text",
    "write_artifact",
]


def __getattr__(name: str) -> Any:
    # The security audit and its scanners run in the audit script's process; gate modules import
    # this module in the plugin's process, which does not need them (tests/test_plugin_startup.py).
    if name == "run_security_audit":
        from pytest_predeploy.security.audit import run_security_audit

        return run_security_audit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
