"""Protocol 10, step 1.2: compare staging with the production baseline.

    python scripts/compare_environments.py --source staging --target production --output .artifacts/pre-deployment/staging-parity-report.json

Reads each environment's infrastructure, configuration, feature flag and secret inputs as
predeploy.yaml names them (``environments:``), applies the ``parity:`` rules and waivers, and
writes staging-parity-report.json. Secrets are compared by keyed fingerprints; no secret value,
hash or length is written or printed.
Exit status: 0 the report is written and nothing blocks; 1 the report is written and lists
blocking drift; 2 the environments could not be compared (the message names file and field).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_predeploy.api import (
    TRANSCRIPTS_DIR,
    add_common_arguments,
    compare_environments,
    load_context,
    parity_problems,
    run_main,
    summary_text,
    write_artifact,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compare_environments.py", description="Compare an environment with its baseline; write staging-parity-report.json.")
    parser.add_argument("--source", default="staging", help="the environment under validation (default: staging)")
    parser.add_argument("--target", default="production", help="the baseline environment (default: production)")
    parser.add_argument("--output", type=Path, required=True, help="where to write staging-parity-report.json")
    parser.add_argument("--release", default=None, help="the release tag (default: $PREDEPLOY_RELEASE, else 'unreleased')")
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    context = load_context(args)
    report = compare_environments(context.config, args.source, args.target, context.release or "unreleased", transcripts=args.output.parent / TRANSCRIPTS_DIR)
    write_artifact(args.output, report)
    print(summary_text(report))
    print(f"report: {args.output}")
    return 1 if parity_problems(report) else 0


if __name__ == "__main__":
    run_main(main)
