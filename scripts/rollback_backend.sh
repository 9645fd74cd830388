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
if ! "$python" -c 'import pytest_predeploy' 2>/dev/null; then
    echo "rollback_backend.sh: error: $python cannot import pytest_predeploy; set PREDEPLOY_PYTHON to the Python that runs pytest" >&2
    exit 2
fi
exec "$python" -m pytest_predeploy.staging rollback "$@"
