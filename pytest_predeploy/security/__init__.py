"""Security and compliance audit (Protocol 10, step 3.2; the security half of Gate 3).

``run_security_audit`` scans the release's source (bandit, detect-secrets) and its Python
distributions (offline OSV database, pip-audit when its service is reachable, licence policy,
CycloneDX SBOM), applies the policy of ``predeploy.yaml``'s ``security:`` section and writes
``security-compliance-report.json``; ``security_problems`` lists what blocks Gate 3.
"""

from __future__ import annotations

from pytest_predeploy.security.audit import run_security_audit
from pytest_predeploy.security.policy import SecurityConfig, SecurityWaiver
from pytest_predeploy.security.report import Finding, ScannerResult, SecurityReport, security_problems

__all__ = ["Finding", "ScannerResult", "SecurityConfig", "SecurityReport", "SecurityWaiver", "run_security_audit", "security_problems"]
