"""``python -m pytest_predeploy.targets``: the step scripts' entry, dispatching on ``staging.target``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def targets(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_predeploy.targets", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write_config(folder: Path, staging: str) -> Path:
    (folder / "svc").mkdir()
    path = folder / "predeploy.yaml"
    path.write_text(f"version: 1\nproject: p\nservices:\n  - name: api\n    source: svc\nstaging:\n{staging}", encoding="utf-8")
    return path


def test_the_local_target_answers_when_the_config_names_it(tmp_path: Path) -> None:
    write_config(tmp_path, "  target: local\n  root: st\n")
    result = targets("status", "--env", "staging", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("api: current (none)")


@pytest.mark.parametrize("how", ["--config={}", "--config {}", "env"])
def test_an_unknown_target_is_one_line_naming_the_file_line_and_field(tmp_path: Path, how: str) -> None:
    config = write_config(tmp_path, "  target: helm\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    args = ["status"] if how == "env" else ["status", *how.format(config).split(" ")]
    env_line = f"PREDEPLOY_CONFIG={config}" if how == "env" else ""
    result = subprocess.run(
        ["env", *([env_line] if env_line else []), sys.executable, "-m", "pytest_predeploy.targets", *args],
        cwd=other,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("python -m pytest_predeploy.targets: error:") and f"{config}:7" in lines[0] and "staging.target" in lines[0], lines[0]
    assert "'local'" in lines[0] and "'kube'" in lines[0]


def test_without_a_config_file_the_target_says_which_file_is_missing(tmp_path: Path) -> None:
    result = targets("status", cwd=tmp_path)
    assert result.returncode == 2 and "predeploy.yaml" in result.stderr and "Traceback" not in result.stderr, result.stderr
