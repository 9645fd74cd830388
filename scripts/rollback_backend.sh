#!/usr/bin/env bash
# Protocol 10, step 3.1: roll staging back to an earlier release (the embedded local staging target).
#
#   bash scripts/rollback_backend.sh --env staging --release PREVIOUS_TAG [--service NAME] [--config FILE]
#
# Switches `current` back to releases/PREVIOUS_TAG and restarts the service (with blue_green:
# switches back to the slot still running it, no restart), then waits for its health check.
# A kill at any point leaves `current` on a complete release; running it again recovers.
# Exit: 0 rolled back and healthy; 1 the release did not start or missed its health deadline;
# 2 bad arguments or config; 3 PREVIOUS_TAG was never deployed there; 4 the service has a single
# release; 5 PREVIOUS_TAG is already current and healthy. 3, 4 and 5 change nothing.
set -euo pipefail
python="${PREDEPLOY_PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "rollback_backend.sh: error: $python not found; set PREDEPLOY_PYTHON to the Python that runs pytest" >&2; exit 2; }
# One interpreter both checks the import and runs the command: ten deploys at once pay for each start.
exec "$python" -c 'import importlib.util, runpy, sys
if importlib.util.find_spec("pytest_predeploy") is None: print(f"rollback_backend.sh: error: {sys.executable} cannot import pytest_predeploy; set PREDEPLOY_PYTHON to the Python that runs pytest", file=sys.stderr); sys.exit(2)
runpy.run_module("pytest_predeploy.targets", run_name="__main__", alter_sys=True)' rollback "$@"
