"""Protocol 10, step 3.2: security and compliance checks of the release.

    python scripts/run_security_audit.py --env staging --output .artifacts/pre-deployment/security-compliance-report.json

Runs bandit, detect-secrets, the offline OSV match, pip-audit (when its service is reachable), the
licence policy and the CycloneDX SBOM as configured in predeploy.yaml's ``security:`` section.
Exit status: 0 the report is written and nothing blocks; 1 the report is written and lists what
blocks (blocking findings, or a fail-closed scanner that could not run: its line says which);
2 the audit could not run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_predeploy.api import add_common_arguments, interrupt_on_sigterm, load_context, run_main, run_security_audit, security_problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_security_audit.py",
        description="Run the security and compliance scans of a release; write security-compliance-report.json and the SBOM beside it.",
    )
    parser.add_argument("--env", default="staging", help="the rehearsal environment (default: staging)")
    parser.add_argument("--output", type=Path, required=True, help="where to write security-compliance-report.json")
    parser.add_argument("--release", default=None, help="the release tag (default: $PREDEPLOY_RELEASE)")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main() -> int:
    interrupt_on_sigterm()
    args = parse_args()
    context = load_context(args)
    release = context.require_release()
    report = run_security_audit(context.config, args.env, release, args.output)
    for scanner in report.scanners:
        version = f" {scanner.version}" if scanner.version else ""
        status = "could not run" if scanner.status == "unavailable" else scanner.status
        detail = f": {scanner.reason}" if scanner.reason else (f": {scanner.findings} finding(s)" if scanner.findings else "")
        action = f"; to fix: {scanner.action}" if scanner.action and scanner.action not in (scanner.reason or "") else ""
        print(f"[security] {scanner.name} ({scanner.tool}{version}) {status}{detail}{action} in {scanner.duration_seconds:.1f}s")
    problems = security_problems(report)
    if problems:
        print(report.headline())
    for problem in problems:
        print(f"- {problem}")
    print(f"{report.summary_line()}; report: {args.output}")
    return 1 if problems else 0


if __name__ == "__main__":
    run_main(main)
