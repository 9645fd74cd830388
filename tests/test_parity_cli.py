"""compare_environments.py end to end, and the demo halting Gate 1 when a critical key flips."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parity_project import baselines

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "compare_environments.py"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_command_on_the_demo_writes_the_report_and_exits_0_without_printing_secrets(tmp_path: Path) -> None:
    out = tmp_path / "staging-parity-report.json"
    result = run("--source", "staging", "--target", "production", "--output", str(out), "--release", "v1.2", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "0 critical, 0 major, 0 minor; 1 waived" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["release"] == "v1.2" and report["step"] == "parity" and report["passed"] is True
    secrets = [
        line.split("=", 1)[1]
        for env in ("staging", "production")
        for line in (ROOT / "demo/environments" / env / "secrets.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    ]
    assert len(secrets) == 6
    for value in secrets:
        assert value not in result.stdout + result.stderr + out.read_text(encoding="utf-8")


def test_command_exits_1_on_blocking_drift_and_2_when_it_cannot_compare(tmp_path: Path) -> None:
    baselines(tmp_path, "db: {engine: mysql}\n", "db: {engine: postgres}\n", parity={"rules": [{"path": "**.engine", "severity": "critical"}]})
    out = tmp_path / "report.json"
    result = run("--output", str(out), "--config", "predeploy.yaml", cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PREDEPLOY_RELEASE": "v9"})
    assert result.returncode == 1, result.stderr
    assert "1 critical" in result.stdout and "infrastructure.db.engine" in result.stdout
    assert json.loads(out.read_text())["release"] == "v9"
    (tmp_path / "staging" / "infra.yaml").write_text("db: {engine: x}\ndb: {engine: y}\n", encoding="utf-8")
    result = run("--output", str(tmp_path / "other.json"), "--config", "predeploy.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "infra.yaml:2: duplicate key 'db'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "other.json").exists()


def _demo_copy(tmp_path: Path) -> Path:
    for name in ("demo", "gates", "scripts"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", ".staging"))
    shutil.copy(ROOT / "predeploy.yaml", tmp_path / "predeploy.yaml")
    return tmp_path


@pytest.mark.parametrize("flip", [False, True])
def test_flipping_one_critical_demo_key_fails_the_gate_1_parity_check(pytester: pytest.Pytester, flip: bool) -> None:
    root = _demo_copy(pytester.path)
    if flip:
        infra = root / "demo/environments/staging/infrastructure.yaml"
        infra.write_text(infra.read_text(encoding="utf-8").replace("engine: postgres", "engine: mysql"), encoding="utf-8")
    result = pytester.runpytest(
        "gates/test_gate1_intake.py",
        "--predeploy-release=v1.2",
        "--predeploy-config=predeploy.yaml",
        f"--predeploy-artifacts={root / 'artifacts'}",
        "-k",
        "parity",
        "-p",
        "no:cacheprovider",
    )
    result.stdout.fnmatch_lines(["*[[]AUTOMATION] compare_environments.py executed*"])
    if flip:
        result.stdout.fnmatch_lines(
            ["*[[]ERROR] Staging configuration drift detected against production baseline.*", "*CRITICAL infrastructure.database.engine*"]
        )
        result.assert_outcomes(failed=1)
    else:
        result.assert_outcomes(passed=1)
