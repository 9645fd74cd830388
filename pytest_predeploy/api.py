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

import importlib
from typing import TYPE_CHECKING, Any

# Each name is imported from its home when first asked for (``from pytest_predeploy.api import
# load``), not with this module: a gate module or a step script uses a few names, and its process
# then loads only the code behind them (all of it is some 0.8 MB of source, compiled in every
# process where PYTHONDONTWRITEBYTECODE is set). Type checkers read the imports below.
if TYPE_CHECKING:
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
    from pytest_predeploy.security.audit import run_security_audit
    from pytest_predeploy.tooling.scriptkit import ScriptContext, add_common_arguments, interrupt_on_sigterm, load_context, run_main

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

#: Where each name of ``__all__`` lives: (module, name there).
_HOMES: dict[str, tuple[str, str]] = {
    "ArtifactModel": ("pytest_predeploy.core.artifacts", "ArtifactModel"),
    "OBSERVABILITY_METRICS": ("pytest_predeploy.core.artifacts", "OBSERVABILITY_METRICS"),
    "TRANSCRIPTS_DIR": ("pytest_predeploy.core.artifacts", "TRANSCRIPTS_DIR"),
    "read_artifact": ("pytest_predeploy.core.artifacts", "read_artifact"),
    "write_artifact": ("pytest_predeploy.core.artifacts", "write_artifact"),
    "ArtifactError": ("pytest_predeploy.core.errors", "ArtifactError"),
    "ConfigError": ("pytest_predeploy.core.errors", "ConfigError"),
    "EXIT_USAGE": ("pytest_predeploy.core.errors", "EXIT_USAGE"),
    "PredeployError": ("pytest_predeploy.core.errors", "PredeployError"),
    "StepError": ("pytest_predeploy.core.errors", "StepError"),
    "RunContext": ("pytest_predeploy.harness.context", "RunContext"),
    "Evidence": ("pytest_predeploy.harness.evidence", "Evidence"),
    "bar_chart_svg": ("pytest_predeploy.harness.evidence", "bar_chart_svg"),
    "show_deployment": ("pytest_predeploy.harness.evidence", "show_deployment"),
    "show_intake": ("pytest_predeploy.harness.evidence", "show_intake"),
    "show_observability": ("pytest_predeploy.harness.evidence", "show_observability"),
    "show_parity": ("pytest_predeploy.harness.evidence", "show_parity"),
    "show_rollback": ("pytest_predeploy.harness.evidence", "show_rollback"),
    "show_security": ("pytest_predeploy.harness.evidence", "show_security"),
    "show_signoffs": ("pytest_predeploy.harness.evidence", "show_signoffs"),
    "show_smoke": ("pytest_predeploy.harness.evidence", "show_smoke"),
    "await_signoff": ("pytest_predeploy.harness.gates", "await_signoff"),
    "load": ("pytest_predeploy.harness.gates", "load"),
    "no_data": ("pytest_predeploy.harness.gates", "no_data"),
    "require": ("pytest_predeploy.harness.gates", "require"),
    "GateContext": ("pytest_predeploy.harness.gateview", "GateContext"),
    "IntakeReport": ("pytest_predeploy.intake.approvals", "IntakeReport"),
    "intake_problems": ("pytest_predeploy.intake.approvals", "intake_problems"),
    "ParityReport": ("pytest_predeploy.intake.parity", "ParityReport"),
    "compare_environments": ("pytest_predeploy.intake.parity", "compare_environments"),
    "parity_problems": ("pytest_predeploy.intake.parity", "parity_problems"),
    "summary_text": ("pytest_predeploy.intake.parity", "summary_text"),
    "RefreshResult": ("pytest_predeploy.intake.refresh", "RefreshResult"),
    "read_refresh": ("pytest_predeploy.intake.refresh", "read_refresh"),
    "refresh_problems": ("pytest_predeploy.intake.refresh", "refresh_problems"),
    "ChecklistResult": ("pytest_predeploy.readiness.checklist", "ChecklistResult"),
    "checklist_problems": ("pytest_predeploy.readiness.checklist", "checklist_problems"),
    "Manifest": ("pytest_predeploy.readiness.package", "Manifest"),
    "package_readiness": ("pytest_predeploy.readiness.package", "package_readiness"),
    "SignoffStatus": ("pytest_predeploy.readiness.signoff", "SignoffStatus"),
    "ApiContractReport": ("pytest_predeploy.rehearsal.contract", "ApiContractReport"),
    "contract_problems": ("pytest_predeploy.rehearsal.contract", "contract_problems"),
    "DeploymentReport": ("pytest_predeploy.rehearsal.deploy", "DeploymentReport"),
    "deployment_problems": ("pytest_predeploy.rehearsal.deploy", "deployment_problems"),
    "ObservabilityResult": ("pytest_predeploy.rehearsal.observability", "ObservabilityResult"),
    "observability_problems": ("pytest_predeploy.rehearsal.observability", "observability_problems"),
    "HttpResponse": ("pytest_predeploy.rehearsal.requestlog", "Response"),
    "smoke_request": ("pytest_predeploy.rehearsal.requestlog", "request"),
    "TestResultsReport": ("pytest_predeploy.rehearsal.smoke", "TestResultsReport"),
    "run_smoke_tests": ("pytest_predeploy.rehearsal.smoke", "run_smoke_tests"),
    "smoke_problems": ("pytest_predeploy.rehearsal.smoke", "smoke_problems"),
    "OperationalResult": ("pytest_predeploy.rollback.operational", "OperationalResult"),
    "operational_problems": ("pytest_predeploy.rollback.operational", "operational_problems"),
    "read_operational": ("pytest_predeploy.rollback.operational", "read_operational"),
    "RollbackReport": ("pytest_predeploy.rollback.rollback", "RollbackReport"),
    "rollback_problems": ("pytest_predeploy.rollback.rollback", "rollback_problems"),
    "SecurityReport": ("pytest_predeploy.security", "SecurityReport"),
    "security_problems": ("pytest_predeploy.security", "security_problems"),
    "run_security_audit": ("pytest_predeploy.security.audit", "run_security_audit"),
    "ScriptContext": ("pytest_predeploy.tooling.scriptkit", "ScriptContext"),
    "add_common_arguments": ("pytest_predeploy.tooling.scriptkit", "add_common_arguments"),
    "interrupt_on_sigterm": ("pytest_predeploy.tooling.scriptkit", "interrupt_on_sigterm"),
    "load_context": ("pytest_predeploy.tooling.scriptkit", "load_context"),
    "run_main": ("pytest_predeploy.tooling.scriptkit", "run_main"),
}


def __getattr__(name: str) -> Any:
    # Not cached here: the module asked is the import system's, so a name is always the object its
    # home holds now (pytester's in-process runs drop the modules a run imported).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = home
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
