"""One run at a time per artifacts dir; planted secrets never reach anything we write."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.project import base_config, make_project

SLOW_PARITY = '''
import json, sys, time
time.sleep(3)
open(sys.argv[1], "w").write(json.dumps({"drift": 0}))
'''


def test_second_concurrent_run_is_refused_and_first_completes(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=SLOW_PARITY)
    first = subprocess.Popen([sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (root / ".artifacts/pre-deployment/transcripts/parity.log").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True, timeout=60)
        assert second.returncode == pytest.ExitCode.USAGE_ERROR
        assert "another protocol run is using" in second.stderr
        assert "Traceback" not in second.stderr
        out, _ = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 0, out
    assert json.loads((root / ".artifacts/pre-deployment/staging-parity-report.json").read_text()) == {"drift": 0}


SECRET = "Canary-Pa55word-7731"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIICXAIBAAKBgQCqGKukO1De7zhZj6+H0qtjTkVxwTCpvKe4eCZ0FPqri0cb2JZfXJ\n-----END RSA PRIVATE KEY-----"
LEAKY_PARITY = f'''
import base64, json, os, sys, urllib.parse
secret, pem = {SECRET!r}, {PEM!r}
print("connecting with", secret)
print("auth", base64.b64encode(("svc:" + secret).encode()).decode())
print("dsn postgres://svc:" + urllib.parse.quote(secret, safe="") + "@db/app")
print(json.dumps({{"key": pem}}))
print(pem, file=sys.stderr)
sys.stdout.flush()
os.write(1, b"y" * 4090 + secret.encode() + b"\\n")
open(sys.argv[1], "w").write(json.dumps({{"drift": 1, "note": "value was " + secret}}))
'''
GATE_ECHOING_SECRET = {
    "test_gate1_intake.py": f'''
        import json, pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity, record_property):
            print("captured output with", {SECRET!r})
            record_property("figure", "secret " + {SECRET!r})
            assert {SECRET!r} == "something else"
    ''',
}


def test_planted_secrets_never_reach_transcripts_artifacts_or_reports(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=LEAKY_PARITY, gates=GATE_ECHOING_SECRET)
    (root / "staging.env").write_text(f'DB_PASSWORD={SECRET}\nTLS_KEY="{PEM}"\n')
    config = base_config(environments={"staging": {"secrets": {"file": "staging.env"}}, "production": {}})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", "-rA")
    assert result.ret == 1
    forms = [SECRET, quote(SECRET, safe=""), base64.b64encode(("svc:" + SECRET).encode()).decode()[8:],
             "MIICXAIBAAKBgQCqGKukO1De7zhZj6", PEM.replace("\n", "\\n")]
    written = [p for p in (root / ".artifacts").rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"parity.log", "staging-parity-report.json", "pytest-report.html", "pytest-report.json", "pytest-junit.xml"}
    for path in written:
        data = path.read_bytes()
        for form in forms:
            assert form.encode() not in data, f"{form!r} leaked into {path}"
    terminal = result.stdout.str() + result.stderr.str()
    for form in forms:
        assert form not in terminal
    assert "contained the value of staging/DB_PASSWORD" in terminal
    assert "[REDACTED:staging/DB_PASSWORD]" in (root / ".artifacts/pre-deployment/transcripts/parity.log").read_text()


SECRET_IN_TEST_ID = f'''
import json, sys
results = {{"drift": 0, "suites": [{{"tests": [{{"nodeid": "test_login[{SECRET}]", "outcome": "passed"}}]}}]}}
open(sys.argv[1], "w").write(json.dumps(results))
'''


def test_a_secret_in_an_artifact_is_located_and_a_too_short_secret_is_warned_about(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=SECRET_IN_TEST_ID)
    (root / "staging.env").write_text(f"DB_PASSWORD={SECRET}\nPIN=42a\n")
    config = base_config(environments={"staging": {"secrets": {"file": "staging.env"}}, "production": {}})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0", "-rA")
    terminal = result.stdout.str() + result.stderr.str()
    assert result.ret == 1
    # Where in the file the secret was, not advice to fix the script that merely reported it.
    assert "the value of staging/DB_PASSWORD at suites[0].tests[0].nodeid" in terminal
    assert "Fix parity.py" not in terminal
    assert SECRET not in terminal
    assert "staging/PIN is shorter than 4 characters" in terminal
    assert "NOT redacted" in terminal


def test_second_run_sharing_the_staging_folder_is_refused_naming_the_folder_and_holder(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=SLOW_PARITY)
    command = [sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"]
    first = subprocess.Popen([*command, "--predeploy-artifacts=one"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (root / "one/transcripts/parity.log").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([*command, "--predeploy-artifacts=two"], cwd=root, capture_output=True, text=True, timeout=60)
        assert second.returncode == pytest.ExitCode.USAGE_ERROR, second.stdout + second.stderr
        staging = root / ".staging" / "staging"
        assert f"another protocol run is using the staging folder {staging} (held by the run of release v1.0 writing to {root / 'one'}; pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert not (root / "two/transcripts").exists()  # refused before any step ran
        out, _ = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 0, out
    # Once the first run has ended, the staging folder is free again.
    third = subprocess.run([*command, "--predeploy-artifacts=two"], cwd=root, capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stdout + third.stderr


def test_artifacts_lock_refusal_does_not_suggest_another_artifacts_folder(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    artifacts = root / ".artifacts/pre-deployment"
    artifacts.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(60)", str(artifacts / ".predeploy.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = subprocess.run([sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"another protocol run is using {artifacts}" in result.stderr
    assert "--predeploy-artifacts" not in result.stderr
