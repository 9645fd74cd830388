"""One run at a time per artifacts dir; planted secrets never reach anything we write."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.project import base_config, make_project
from tests.waiting import poll

# Holds its run (and the run's locks) until the test has made its second run and writes "go".
SLOW_PARITY = """
import json, pathlib, sys, time
deadline = time.monotonic() + 60
while not pathlib.Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
open(sys.argv[1], "w").write(json.dumps({"drift": 0}))
"""


def test_second_concurrent_run_is_refused_and_first_completes(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=SLOW_PARITY)
    first = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        poll(lambda: (root / ".artifacts/pre-deployment/transcripts/parity.log").exists(), "the first run's parity step started", deadline=20)
        second = subprocess.run(
            [sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == pytest.ExitCode.USAGE_ERROR
        assert "another protocol run is using" in second.stderr
        assert "Traceback" not in second.stderr
        (root / "go").touch()
        out, _ = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 11, out  # it ran to its end; fake gates bind no criterion: not a verdict
    assert json.loads((root / ".artifacts/pre-deployment/staging-parity-report.json").read_text()) == {"drift": 0}


SECRET = "Canary-Pa55word-7731"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIICXAIBAAKBgQCqGKukO1De7zhZj6+H0qtjTkVxwTCpvKe4eCZ0FPqri0cb2JZfXJ\n-----END RSA PRIVATE KEY-----"
LEAKY_PARITY = f"""
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
"""
GATE_ECHOING_SECRET = {
    "test_gate1_intake.py": f"""
        import json, pytest
        pytestmark = pytest.mark.gate(1, "Intake Confirmation")

        @pytest.mark.must
        def test_parity_clean(parity, record_property):
            print("captured output with", {SECRET!r})
            record_property("figure", "secret " + {SECRET!r})
            assert {SECRET!r} == "something else"
    """,
}


def test_planted_secrets_never_reach_transcripts_artifacts_or_reports(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=LEAKY_PARITY, gates=GATE_ECHOING_SECRET)
    (root / "staging.env").write_text(f'DB_PASSWORD={SECRET}\nTLS_KEY="{PEM}"\n')
    config = base_config(environments={"staging": {"secrets": {"file": "staging.env"}}, "production": {}})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest("--predeploy-release=v1.0", "-rA")
    assert result.ret == 1
    forms = [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(("svc:" + SECRET).encode()).decode()[8:],
        "MIICXAIBAAKBgQCqGKukO1De7zhZj6",
        PEM.replace("\n", "\\n"),
    ]
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


ROOT = Path(__file__).resolve().parent.parent
# One canary per case; '/' and '+' make the URL-encoded and base64 forms differ from the plain one.
CANARIES = {
    "env comment": "Cnry/env+Comment-4410",
    "env next key": "Cnry/env+NextKey-5521",
    "nested add": "Cnry/nested+Add-6632",
    "keyed list add": "Cnry/keyed+List-7743",
    "parent type change": "Cnry/parent+Type-8854",
    "removal": "Cnry/removed+Block-9965",
    "camelCase staging": "Cnry/camel+Stg-1076",
    "camelCase production": "Cnry/camel+Prd-2187",
    "compose staging": "Cnry/compose+Stg-3298",
    "compose shared": "Cnry/compose+Shared-4309",
}
CANARY_STAGING = f"""
mail: {{relay: {{host: relay.internal, password: "{CANARIES["nested add"]}"}}}}
users:
  - {{name: bob, role: viewer}}
  - {{name: alice, role: admin, password: "{CANARIES["keyed list add"]}"}}
smtp:
  transport: {{auth: {{password: "{CANARIES["parent type change"]}", user: mailer}}}}
legacy: {{}}
api: {{adminPassword: "{CANARIES["camelCase staging"]}", bearerToken: "{CANARIES["camelCase staging"]}"}}
"""
CANARY_PRODUCTION = f"""
mail: {{}}
users:
  - {{name: bob, role: viewer}}
smtp:
  transport: {{auth: null}}
legacy: {{billing: {{endpoint: "https://billing.internal", apiToken: "{CANARIES["removal"]}"}}}}
api: {{adminPassword: "{CANARIES["camelCase production"]}", bearerToken: "{CANARIES["camelCase production"]}"}}
"""
COMPOSE = """
services:
  web:
    image: getsentry/sentry:24.1.0
    environment:
      - SENTRY_CONF=/etc/sentry
      - AWS_SECRET_KEY={aws}
      - SENTRY_DB_PASSWORD={shared}
"""


def _canary_forms(value: str) -> list[str]:
    encoded = base64.b64encode(("svc:" + value).encode()).decode()
    return [value, quote(value, safe=""), quote(value), quote(value, safe="").lower(), encoded[8:-4], json.dumps(value)[1:-1]]


def test_canaries_in_real_layouts_never_reach_artifacts_reports_or_the_terminal(pytester: pytest.Pytester) -> None:
    root = pytester.path
    for name in ("demo", "gates", "scripts"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".staging"))
    config = yaml.safe_load((ROOT / "predeploy.yaml").read_text(encoding="utf-8"))
    envs = root / "demo" / "environments"
    c = CANARIES
    with (envs / "staging" / "secrets.env").open("a", encoding="utf-8") as env:
        env.write(f'CANARY_DB_PASSWORD="{c["env comment"]}" # rotated in March\nCANARY_API_KEY={c["env next key"]}\nCANARY_NOTE="kept"\n')
    with (envs / "production" / "secrets.env").open("a", encoding="utf-8") as env:
        env.write(f'CANARY_DB_PASSWORD="other-{c["env comment"]}" # rotated\nCANARY_API_KEY={c["env next key"]}\nCANARY_NOTE="kept"\n')
    for env_name, layout, aws in (("staging", CANARY_STAGING, c["compose staging"]), ("production", CANARY_PRODUCTION, "prd-aws-key-0042")):
        (envs / env_name / "canary.yaml").write_text(layout, encoding="utf-8")
        (envs / env_name / "compose.yaml").write_text(COMPOSE.format(aws=aws, shared=c["compose shared"]), encoding="utf-8")
        shutil.copy(ROOT / "tests" / "data" / "parity" / "helm" / f"{env_name}.yaml", envs / env_name / "helm-values.yaml")
        config["environments"][env_name]["configuration"] += [
            f"demo/environments/{env_name}/{name}" for name in ("canary.yaml", "compose.yaml", "helm-values.yaml")
        ]
    # Critical, so the blocking line (with the values it shows) reaches the terminal.
    config["parity"]["rules"].insert(0, {"path": "configuration.smtp.**", "severity": "critical"})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    result = pytester.runpytest("gates/test_gate1_intake.py", "-k", "parity", "--predeploy-release=v1.2", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=1)
    report = json.loads((root / ".artifacts/pre-deployment/staging-parity-report.json").read_text(encoding="utf-8"))
    reused = {item["path"] for item in report["items"] if item["detail"] == "REUSED"}
    assert reused >= {"secrets.CANARY_API_KEY", "configuration.grafana.adminPassword", "configuration.services.web.environment[2]"}
    assert {"configuration.mail.relay", "configuration.users[name=alice]", "configuration.smtp.transport.auth", "configuration.legacy.billing"} <= {
        item["path"] for item in report["items"]
    }

    written = [p for p in root.rglob("*") if p.is_file() and (".artifacts" in p.parts or ".staging" in p.parts)]
    assert any(p.name == "staging-parity-report.json" for p in written) and any(p.name == "pytest-report.html" for p in written)
    terminal = result.stdout.str() + result.stderr.str()
    assert "REUSED" in terminal and "CRITICAL configuration.smtp.transport.auth: type-changed" in terminal
    for case, value in [*CANARIES.items(), ("helm default password", "prom-operator")]:
        for form in _canary_forms(value):
            assert form not in terminal, f"{case}: {form!r} in the terminal output"
            for path in written:
                assert form.encode() not in path.read_bytes(), f"{case}: {form!r} leaked into {path}"


SECRET_IN_TEST_ID = f"""
import json, sys
results = {{"drift": 0, "suites": [{{"tests": [{{"nodeid": "test_login[{SECRET}]", "outcome": "passed"}}]}}]}}
open(sys.argv[1], "w").write(json.dumps(results))
"""


def test_a_secret_in_an_artifact_is_located_and_a_too_short_secret_is_warned_about(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, parity_script=SECRET_IN_TEST_ID)
    (root / "staging.env").write_text(f"DB_PASSWORD={SECRET}\nPIN=42a\n")
    config = base_config(environments={"staging": {"secrets": {"file": "staging.env"}}, "production": {}})
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config))
    result = pytester.runpytest("--predeploy-release=v1.0", "-rA")
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
        poll(lambda: (root / "one/transcripts/parity.log").exists(), "the first run's parity step started", deadline=20)
        second = subprocess.run([*command, "--predeploy-artifacts=two"], cwd=root, capture_output=True, text=True, timeout=60)
        assert second.returncode == pytest.ExitCode.USAGE_ERROR, second.stdout + second.stderr
        staging = root / ".staging" / "staging"
        assert (
            f"another protocol run is using the staging folder {staging} (held by the run of release v1.0 writing to {root / 'one'}; pid {first.pid}"
            in second.stderr
        )
        assert "Traceback" not in second.stderr
        assert not (root / "two/transcripts").exists()  # refused before any step ran
        (root / "go").touch()
        out, _ = first.communicate(timeout=60)
    finally:
        first.kill() if first.poll() is None else None
    assert first.returncode == 11, out  # it ran to its end; fake gates bind no criterion: not a verdict
    # Once the first run has ended, the staging folder is free again.
    third = subprocess.run([*command, "--predeploy-artifacts=two"], cwd=root, capture_output=True, text=True, timeout=60)
    assert third.returncode == 11, third.stdout + third.stderr


def test_artifacts_lock_refusal_does_not_suggest_another_artifacts_folder(pytester: pytest.Pytester) -> None:
    root = make_project(pytester)
    artifacts = root / ".artifacts/pre-deployment"
    artifacts.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); time.sleep(60)",
            str(artifacts / ".predeploy.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--predeploy-release=v1.0", "-p", "no:cacheprovider"], cwd=root, capture_output=True, text=True, timeout=60
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"another protocol run is using {artifacts}" in result.stderr
    assert "--predeploy-artifacts" not in result.stderr
