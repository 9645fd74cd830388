"""Builds small fake *projects* for pytester: a predeploy.yaml whose steps run tiny real
scripts, and four gate modules that read what those scripts write. The plugin code under test
is the real one; only the project around it is small."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

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

PARITY_OK = """
import json, sys
out = sys.argv[1]
open(out, "w").write(json.dumps({"drift": 0}))
print("parity compared")
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
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config or base_config(), sort_keys=False))
    (root / "parity.py").write_text(textwrap.dedent(parity_script))
    gates_dir = root / "gates"
    gates_dir.mkdir(exist_ok=True)
    for name, body in (gates or GATES).items():
        (gates_dir / name).write_text(textwrap.dedent(body))
    return root


def json_report(root: Path) -> dict[str, Any]:
    return json.loads((root / ".artifacts/pre-deployment/pytest-report.json").read_text())


def lit(pattern: str) -> str:
    """An fnmatch pattern in which '[' is literal (protocol lines start with '[PHASE ...')."""
    return pattern.replace("[", "[[]")
