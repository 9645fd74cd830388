#!/usr/bin/env bash
# The whole protocol on the embedded demo staging, from a fresh clone:
# install, run gates 1-4 (ends "awaiting sign-off"), sign the package off as the demo's two
# reviewers with their DEMO-ONLY keys (demo/keys/README.md: published, never use them), re-run
# Gate 4 alone on the sealed package -> [PROTOCOL COMPLETE].
# --prometheus: the same with a real Prometheus beside the services (apt-get install prometheus),
# asked the PromQL checks of demo/prometheus/overlay.yaml (docs/prometheus.md).
# --kube: the same with the services as containers run from the Kubernetes manifests in demo/kube/
# (podman kube play; apt-get install podman runc), images built here (docs/kube.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=.artifacts/pre-deployment/PRE-DEPLOYMENT-PACKAGE.zip
CONFIG=predeploy.yaml
case "${1:-}" in
  "") ;;
  --prometheus) CONFIG=predeploy.prometheus.yaml ;;
  --kube) CONFIG=predeploy.kube.yaml ;;
  *) echo "usage: bash demo/run-protocol.sh [--prometheus | --kube]" >&2; exit 2 ;;
esac
PYTEST_CONFIG=() CLI_CONFIG=()
if [ "$CONFIG" != predeploy.yaml ]; then PYTEST_CONFIG=("--predeploy-config=$CONFIG") CLI_CONFIG=(--config "$CONFIG"); fi

run() { printf '\n$ %s\n' "$*"; "$@"; }

# What each variant needs of the machine, checked before anything is installed or built.
if [ "$CONFIG" = predeploy.prometheus.yaml ]; then
  command -v prometheus >/dev/null || { echo "--prometheus needs the Prometheus server: apt-get install prometheus" >&2; exit 2; }
elif [ "$CONFIG" = predeploy.kube.yaml ]; then
  { command -v podman && command -v runc; } >/dev/null || { echo "--kube needs a container engine: apt-get install podman runc" >&2; exit 2; }
  # A host that refuses podman's defaults (a sandbox: no setrlimit, hybrid cgroups) is told the
  # whole fix here, not in a deploy error cut to the gate's line width.
  probe="predeploy-probe-$$"
  if ! started=$( { podman pod create --name "$probe" >/dev/null && podman pod start "$probe" >/dev/null; } 2>&1 ); then
    podman pod rm --force "$probe" >/dev/null 2>&1 || true
    echo "--kube: podman cannot start a container on this host (${started##*$'\n'})." >&2
    echo "Give it a containers.conf for this run and export it, then rerun (docs/kube.md, 'Sandboxed hosts'):" >&2
    echo "  printf '[containers]\\ndefault_ulimits = []\\n[engine]\\ncgroup_manager = \"cgroupfs\"\\nruntime = \"runc\"\\n' > /tmp/predeploy-containers.conf" >&2
    echo "  export CONTAINERS_CONF=/tmp/predeploy-containers.conf" >&2
    exit 2
  fi
  podman pod rm --force "$probe" >/dev/null 2>&1 || true
fi

run python3 -m venv .venv
run .venv/bin/pip install -q -e .
if [ "$CONFIG" != predeploy.yaml ]; then
  variant=${CONFIG#predeploy.}
  run .venv/bin/python demo/make_config.py "${variant%.yaml}" "$CONFIG"
fi

# Exit status 10 = every gate passed and the sealed package awaits sign-off; anything else stops here.
set +e
run .venv/bin/pytest --predeploy-release=v1.2 "${PYTEST_CONFIG[@]}"
status=$?
set -e
if [ "$status" != 10 ] && [ "$status" != 0 ]; then
  echo "the protocol run ended with exit status $status (see the gate summary above); no sign-off requested" >&2
  exit "$status"
fi

run .venv/bin/predeploy approve "$PACKAGE" --role release-manager --key demo/keys/riley-manager_ed25519 --decision go "${CLI_CONFIG[@]}"
run .venv/bin/predeploy approve "$PACKAGE" --role qa-lead --key demo/keys/quinn-qa_ed25519 --decision go --conditions "watch checkout error ratio for 1h after rollout" "${CLI_CONFIG[@]}"
run .venv/bin/pytest --predeploy-release=v1.2 "${PYTEST_CONFIG[@]}" gates/test_gate4_readiness.py
run .venv/bin/predeploy verify "${CLI_CONFIG[@]}" "$PACKAGE"
