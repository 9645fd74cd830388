"""A scanner that could not run is said to have not run, with what to do: never "findings"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.project import base_config, lit, make_project

ROOT = Path(__file__).parents[1]
OSV_DB = ROOT / "tests" / "data" / "security" / "osv"
ALL_SCANNERS = ("bandit", "secrets", "osv", "pip_audit", "licenses", "sbom")


def gate3_project(pytester: pytest.Pytester, database: str, requirement: str) -> Path:
    """A project whose Gate 3 is the real gate module, running only the OSV scan."""
    config = base_config(
        security={
            "requirements": ["requirements.txt"],
            **{name: {"enabled": name == "osv"} for name in ALL_SCANNERS},
            "osv": {"database": database, "max_age": "none"},
        },
        steps={"security": {"command": f"{{python}} {ROOT / 'scripts' / 'run_security_audit.py'} --env {{env}} --output {{output}}", "timeout": "120s"}},
    )
    gate3 = (ROOT / "gates" / "test_gate3_rollback_security.py").read_text()
    root = make_project(pytester, config, gates={"test_gate3_rollback_security.py": gate3})
    (root / "requirements.txt").write_text(requirement + "\n")
    return root


def test_a_scanner_that_could_not_run_is_reported_as_such_with_the_command_to_fix_it(pytester: pytest.Pytester) -> None:
    gate3_project(pytester, "no-such-advisory-db", "requests==2.31.0")
    result = pytester.runpytest("gates/test_gate3_rollback_security.py", "-k", "security_and_compliance", "--predeploy-release=v1.0", "-p", "no:cacheprovider")
    text = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            lit("*[ERROR] Security/compliance scan could not run: osv (no data, not a finding; fail-closed).*"),
            "*osv: could not run (unavailable): database not found at *no-such-advisory-db; run `predeploy advisories update --to no-such-advisory-db` (fail-closed)",
        ]
    )
    result.stdout.fnmatch_lines(["*Gate 3*could not run: osv*"])
    assert "reported blocking findings" not in text and "completed with findings" not in text
    assert result.ret == 1
    # Real findings keep the protocol's own [ERROR] line.
    gate3_project(pytester, str(OSV_DB), "requests==2.19.1")
    result = pytester.runpytest("gates/test_gate3_rollback_security.py", "-k", "security_and_compliance", "--predeploy-release=v1.0", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([lit("*[ERROR] Security/compliance scan reported blocking findings.*"), "*PYSEC-2018-28 in requests 2.19.1*"])
    assert "could not run" not in result.stdout.str()
    assert result.ret == 1


def test_the_script_says_could_not_run_and_what_to_do(tmp_path: Path) -> None:
    data = {
        "version": 1,
        "project": "audit-test",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "api"}],
        "approvals": {"upstream": [], "allow_none": True},
        "security": {
            "source_paths": ["src"],
            **{name: {"enabled": name == "bandit"} for name in ALL_SCANNERS},
            "bandit": {"enabled": True, "command": "/nonexistent/bin/bandit"},
        },
    }
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n")
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(data))
    output = tmp_path / "security-compliance-report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_security_audit.py"),
            "--release",
            "v1",
            "--config",
            str(tmp_path / "predeploy.yaml"),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "[security] bandit (bandit) could not run: executable not found: /nonexistent/bin/bandit; to fix: install it where the audit runs:" in proc.stdout
    assert f"{sys.executable} -m pip install bandit" in proc.stdout
    assert "unavailable:" not in proc.stdout.replace("(unavailable):", "")
    scanner = json.loads(output.read_text())["scanners"][0]
    assert scanner["status"] == "unavailable" and "pip install bandit" in scanner["action"]
