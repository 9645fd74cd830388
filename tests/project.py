"""Builds small fake *projects* for pytester: a predeploy.yaml whose steps run tiny real
scripts, and four gate modules that read what those scripts write. The plugin code under test
is the real one; only the project around it is small."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EVIDENCE = REPO / "tests" / "data" / "evidence"

GATES = {
    "test_gate1_intake.py": """
        import json, pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity):
            data = json.loads(parity.read_text())
            assert data["drift"] == 0, "critical drift"

        @pytest.mark.guideline
        def test_flags_refreshed():
            assert False, "flags not refreshed"
    """,
    "test_gate2_rehearsal.py": """
        import pytest
        pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

        @pytest.mark.must
        def test_deployed(predeploy):
            assert predeploy.release

        @pytest.mark.must
        def test_smoke(predeploy):
            pass
    """,
    "test_gate3_rollback_security.py": """
        import pytest
        pytestmark = pytest.mark.gate(3, "Rollback & Security")

        @pytest.mark.must
        def test_rollback():
            pass
    """,
    "test_gate10_extra.py": """
        import pytest
        pytestmark = pytest.mark.gate(10, "Extra")

        @pytest.mark.must
        def test_extra():
            pass
    """,
}

#: Gates 1-3 binding every criterion the protocol declares for them, with the real Gate 4: a fake
#: project whose full run can seal a package and end awaiting sign-off (exit 10). Its MUST tests
#: copy real evidence of a demo run (tests/data/evidence/) into the artifacts folder, so the
#: harness's declared judges judge real artifacts; intake and parity come from the real steps.
EVIDENCE_HELPER = """
import json, pathlib

def evidence(predeploy, name):
    data = json.loads((pathlib.Path("evidence") / name).read_text())
    data["release"] = predeploy.release
    predeploy.artifact(name).write_text(json.dumps(data))
    return predeploy.artifact(name)
"""
COMPLETE_GATES = {
    "fake_evidence.py": EVIDENCE_HELPER,
    "test_gate1_intake.py": """
        import pytest
        from pytest_predeploy.api import ParityReport, load, parity_problems, require
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must("approvals")
        def test_approvals(intake):
            pass

        @pytest.mark.must("parity")
        def test_parity_clean(parity):
            require(parity_problems(load(parity, ParityReport)), "critical drift")

        @pytest.mark.guideline("data-refresh")
        def test_flags_refreshed():
            pass
    """,
    "test_gate2_rehearsal.py": """
        import pytest
        from fake_evidence import evidence
        pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

        @pytest.mark.must("deployment")
        def test_deployed(predeploy):
            evidence(predeploy, "staging-deployment-report.json")
            predeploy.artifact("staging-deployment-run.log").write_text("# the fake project's deployment transcript\\n")

        @pytest.mark.must("smoke")
        def test_smoke(predeploy):
            evidence(predeploy, "staging-test-results.json")

        @pytest.mark.must("contract")
        def test_contract(predeploy):
            evidence(predeploy, "api-contract-report.json")

        @pytest.mark.guideline("observability")
        def test_observability():
            pass
    """,
    "test_gate3_rollback_security.py": """
        import pytest
        from fake_evidence import evidence
        pytestmark = pytest.mark.gate(3, "Rollback & Security")

        @pytest.mark.must("rollback")
        def test_rollback(predeploy):
            evidence(predeploy, "rollback-verification-report.json")

        @pytest.mark.must("security")
        def test_security(predeploy):
            evidence(predeploy, "security-compliance-report.json")

        @pytest.mark.guideline("operational")
        def test_operational():
            pass
    """,
}

PARITY_OK = """
import json, sys
out = sys.argv[1]
open(out, "w").write(json.dumps({"drift": 0}))
print("parity compared")
"""


#: Writes the demo's real parity report (no drift) to its first argument.
PARITY_REPORT = """
import json, sys, pathlib
data = json.loads(pathlib.Path("evidence/staging-parity-report.json").read_text())
data["release"] = "v1.0"
open(sys.argv[1], "w").write(json.dumps(data))
"""


def base_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 1,
        "project": "fake",
        "previous_release": "v0.9",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "steps": {"parity": {"command": "{python} parity.py {output}", "timeout": "20s"}},
    }
    config.update(overrides)
    return config


def make_project(pytester: pytest.Pytester, config: dict[str, Any] | None = None, parity_script: str = PARITY_OK, gates: dict[str, str] | None = None) -> Path:
    root = pytester.path
    shutil.copytree(EVIDENCE, root / "evidence", dirs_exist_ok=True)
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config or base_config(), sort_keys=False))
    (root / "parity.py").write_text(textwrap.dedent(parity_script))
    gates_dir = root / "gates"
    gates_dir.mkdir(exist_ok=True)
    for name, body in (gates or GATES).items():
        (gates_dir / name).write_text(textwrap.dedent(body))
    return root


def make_complete_project(pytester: pytest.Pytester, config: dict[str, Any] | None = None, parity_script: str | None = None) -> Path:
    """A fake project whose gates bind every declared criterion, with the shipped Gate 4."""
    root = make_project(pytester, config=config, parity_script=parity_script or PARITY_REPORT, gates=COMPLETE_GATES)
    shutil.copy(REPO / "gates" / "test_gate4_readiness.py", root / "gates")
    return root


def json_report(root: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((root / ".artifacts/pre-deployment/pytest-report.json").read_text())
    return report


def lit(pattern: str) -> str:
    """An fnmatch pattern in which '[' is literal (protocol lines start with '[PHASE ...')."""
    return pattern.replace("[", "[[]")
