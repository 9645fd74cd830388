#!/usr/bin/env bash
# Protocol 10, step 2.1: deploy a release to staging (the embedded local staging target).
#
#   bash scripts/deploy_backend.sh --env staging --release TAG [--service NAME] [--config FILE]
#
# Builds releases/<TAG> of each service (or only NAME), switches `current` atomically, restarts
# the service (or, with blue_green, starts the idle slot and switches to it) and waits for its
# health check. Exit: 0 deployed, 1 a service failed to start or missed its health deadline
# (`current` is left on TAG for rollback_backend.sh to restore), 2 bad arguments or config.
# Replace this script (steps.deploy in predeploy.yaml) to deploy with Helm, kubectl, Ansible ...
set -euo pipefail
python="${PREDEPLOY_PYTHON:-python3}"
if ! "$python" -c 'import pytest_predeploy' 2>/dev/null; then
    echo "deploy_backend.sh: error: $python cannot import pytest_predeploy; set PREDEPLOY_PYTHON to the Python that runs pytest" >&2
    exit 2
fi
exec "$python" -m pytest_predeploy.staging deploy "$@"
