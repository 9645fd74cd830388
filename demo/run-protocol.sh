#!/usr/bin/env bash
# The whole protocol on the embedded demo staging, from a fresh clone:
# install, run gates 1-4 (ends "awaiting sign-off"), sign the package off as the demo's two
# reviewers with their DEMO-ONLY keys (demo/keys/README.md: published, never use them), re-run
# Gate 4 alone on the sealed package -> [PROTOCOL COMPLETE].
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=.artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip

run() { printf '\n$ %s\n' "$*"; "$@"; }

run python3 -m venv .venv
run .venv/bin/pip install -q -e .

# Exit status 10 = every gate passed and the sealed package awaits sign-off; anything else stops here.
set +e
run .venv/bin/pytest --predeploy-release=v1.2
status=$?
set -e
if [ "$status" != 10 ] && [ "$status" != 0 ]; then
  echo "the protocol run ended with exit status $status (see the gate summary above); no sign-off requested" >&2
  exit "$status"
fi

run .venv/bin/predeploy approve "$PACKAGE" --role release-manager --key demo/keys/riley-manager_ed25519 --decision go
run .venv/bin/predeploy approve "$PACKAGE" --role qa-lead --key demo/keys/quinn-qa_ed25519 --decision go --conditions "watch checkout error ratio for 1h after rollout"
run .venv/bin/pytest --predeploy-release=v1.2 gates/test_gate4_readiness.py
run .venv/bin/predeploy verify "$PACKAGE"
