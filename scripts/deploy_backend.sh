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
command -v "$python" >/dev/null || { echo "deploy_backend.sh: error: $python not found; set PREDEPLOY_PYTHON to the Python that runs pytest" >&2; exit 2; }
# One interpreter both checks the import and runs the command: ten deploys at once pay for each start.
exec "$python" -c 'import importlib.util, runpy, sys
if importlib.util.find_spec("pytest_predeploy") is None: print(f"deploy_backend.sh: error: {sys.executable} cannot import pytest_predeploy; set PREDEPLOY_PYTHON to the Python that runs pytest", file=sys.stderr); sys.exit(2)
runpy.run_module("pytest_predeploy.targets", run_name="__main__", alter_sys=True)' deploy "$@"
