"""Protocol 10, step 2.2: run the smoke and acceptance suites against staging.

    python scripts/run_smoke_tests.py --env staging --output .artifacts/pre-deployment/staging-test-results.json

Exit status: 0 every test passed and coverage is met; 1 the report is written and something
failed (a test, or coverage); 2 something could not run (a suite, the metrics, or bad input).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_predeploy.api import EXIT_USAGE, ConfigError, add_common_arguments, interrupt_on_sigterm, load_context, run_main, run_smoke_tests


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_smoke_tests.py", description="Run the smoke and acceptance suites against staging; write staging-test-results.json."
    )
    parser.add_argument("--env", default="staging", help="environment the suites run against (default: staging)")
    parser.add_argument("--output", type=Path, required=True, help="where to write staging-test-results.json")
    parser.add_argument("--release", default=None, help="release expected in staging (default: $PREDEPLOY_RELEASE)")
    parser.add_argument("--select", default=None, help="pytest -k expression selecting a subset of tests (names or markers)")
    parser.add_argument("--suite", action="append", dest="suites", default=None, help="run only this suite (repeatable)")
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help="base URL of a service, instead of asking the local staging target (repeat for every service)",
    )
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main() -> int:
    interrupt_on_sigterm()
    args = parse_args()
    context = load_context(args)
    release = context.require_release()
    urls = None
    if args.url:
        urls = {}
        for item in args.url:
            service, sep, url = item.partition("=")
            if not sep or not service or not url:
                raise ConfigError(f"--url {item!r}: expected SERVICE=URL")
            urls[service] = url
    report = run_smoke_tests(context.config, args.env, release, args.output, select=args.select, suites=args.suites, urls=urls)
    for problem in report.problems:
        print(f"- {problem}")
    totals = report.totals
    coverage = f"{report.coverage.ratio:.0%}" if report.coverage.ratio is not None else "no data"
    print(
        f"{totals.passed} passed, {totals.failed} failed, {totals.errors} errors, {totals.skipped} skipped in {len(report.suites)} suite(s); coverage {coverage}; report: {args.output}"
    )
    if any(suite.status == "no-data" for suite in report.suites) or not report.suites or (report.min_coverage > 0 and report.coverage.status != "ok"):
        return EXIT_USAGE
    return 1 if report.problems else 0


if __name__ == "__main__":
    run_main(main)
