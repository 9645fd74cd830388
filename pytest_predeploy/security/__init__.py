"""Security and compliance audit (Protocol 10, step 3.2; the security half of Gate 3).

``run_security_audit`` scans the release's source (bandit, detect-secrets) and its Python
distributions (offline OSV database, pip-audit when its service is reachable, licence policy,
CycloneDX SBOM), applies the policy of ``predeploy.yaml``'s ``security:`` section and writes
``security-compliance-report.json``; ``security_problems`` lists what blocks Gate 3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_predeploy.security.policy import SecurityConfig, SecurityWaiver
from pytest_predeploy.security.report import Finding, ScannerResult, SecurityReport, security_problems

if TYPE_CHECKING:
    from pytest_predeploy.security.audit import run_security_audit

__all__ = ["Finding", "ScannerResult", "SecurityConfig", "SecurityReport", "SecurityWaiver", "run_security_audit", "security_problems"]


def __getattr__(name: str) -> Any:
    # The audit and its scanners (bandit, detect-secrets, OSV, packaging ...) run in the audit
    # script's process; the plugin's process needs only the policy and the report, so the audit
    # is imported on first use, not with the package (tests/test_plugin_startup.py).
    if name == "run_security_audit":
        from pytest_predeploy.security.audit import run_security_audit

        return run_security_audit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
