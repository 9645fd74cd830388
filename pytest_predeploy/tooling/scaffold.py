"""``predeploy init``: what a repository needs to run the protocol, written once and never
overwritten.

It writes a starting ``predeploy.yaml`` that validates as written and deploys to the embedded
local staging target, this project's own gate modules and protocol scripts (copies: the team
owns and may change them), a starter smoke suite, and templates of the inputs the gates read
(environment baselines, upstream approval records, runbooks, on-call schedule, escalation
matrix). What the team must fill in is marked ``SET ME`` and listed in :data:`NEXT_STEPS`.

The gate modules and scripts ship inside the wheel as ``pytest_predeploy.gate_templates`` and
``pytest_predeploy.script_templates`` (mapped from ``gates/`` and ``scripts/`` in pyproject.toml,
so there is one copy in the source tree). An editable install does not make those packages
importable, so :func:`template_dir` finds the folder by path: inside the installed package when
it is there (a wheel), else beside it (a source checkout).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pytest_predeploy.config import DEFAULT_CONFIG
from pytest_predeploy.core.errors import ConfigError, PredeployError
from pytest_predeploy.core.fields import utcnow
from pytest_predeploy.targets.local.settings import SERVICE_NAME

#: Where the team's own protocol inputs go (everything but the config, gates/ and scripts/).
HOME = "predeploy"
DEFAULT_SERVICE = "app"

TemplateKind = Literal["gates", "scripts"]
_PACKAGED = {"gates": "gate_templates", "scripts": "script_templates"}
_PATTERNS = {"gates": ("*.py",), "scripts": ("*.py", "*.sh")}

APPROVALS = (
    ("protocol-4-quality-audit", "Protocol 4 quality audit"),
    ("protocol-9-integration-signoff", "Protocol 9 integration sign-off"),
    ("security-waivers", "Security/compliance waivers"),
)


@dataclass(frozen=True)
class Service:
    """A service named on the command line: ``NAME`` or ``NAME=PATH`` (its source folder)."""

    name: str
    source: str | None

    @classmethod
    def parse(cls, text: str, project: Path) -> Service:
        name, sep, source = text.partition("=")
        if not SERVICE_NAME.match(name):
            raise ConfigError(f"--service {text!r}: a service name is letters, digits, '.', '_' or '-' (it names a folder)")
        if sep:
            folder = (project / source).resolve()
            if not folder.is_dir():
                raise ConfigError(f"--service {text!r}: {project / source} is not a folder (PATH is the service's source, relative to --dir)")
            if project.resolve().is_relative_to(folder):
                # Each release is a copy of the source, made inside the repository (.staging/).
                raise ConfigError(f"--service {text!r}: the source must be a folder of the service's own, not the repository (or above it): each staging release is a copy of it")
            return cls(name, Path(source).as_posix())
        # Without a PATH, a folder named like the service is taken to be its source.
        return cls(name, name if (project / name).is_dir() else None)


@dataclass
class InitResult:
    """What ``predeploy init`` did, as paths relative to the project folder."""

    project: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def template_dir(kind: TemplateKind) -> Path:
    """The folder holding this project's gate modules or protocol scripts."""
    package = Path(__file__).parent.parent  # tooling/ -> the package root
    for candidate in (package / _PACKAGED[kind], package.parent / kind):
        if candidate.is_dir() and any(candidate.glob("*.py")):
            return candidate
    raise PredeployError(
        f"cannot find the {kind} templates: neither {package / _PACKAGED[kind]} (installed wheel) nor {package.parent / kind} "
        "(source checkout) holds them; reinstall pytest-predeploy"
    )


def _template_files(kind: TemplateKind) -> dict[str, bytes]:
    folder = template_dir(kind)
    found = {path.name: path for pattern in _PATTERNS[kind] for path in folder.glob(pattern) if path.name != "__init__.py"}
    return {f"{kind}/{name}": found[name].read_bytes() for name in sorted(found)}


def starter_files(project: Path, services: Sequence[Service]) -> dict[str, str | bytes]:
    """Every file ``predeploy init`` writes: path relative to ``project`` -> its content."""
    files: dict[str, str | bytes] = {DEFAULT_CONFIG: starter_config(project, services)}
    files.update(_template_files("gates"))
    files.update(_template_files("scripts"))
    files[f"{HOME}/smoke/conftest.py"] = SMOKE_CONFTEST
    files[f"{HOME}/smoke/test_operational.py"] = SMOKE_OPERATIONAL
    today = utcnow().date()
    for name, title in APPROVALS:
        files[f"{HOME}/approvals/{name}.example.yaml"] = APPROVAL_EXAMPLES[name].format(
            title=title, name=name, today=today.isoformat(), expires=(today + timedelta(days=30)).isoformat()
        )
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    service_list = "".join(f"  - name: {s.name}\n    runtime: {runtime}\n    replicas: {{replicas}}\n" for s in services)
    for env, replicas in (("staging", 1), ("production", 2)):
        folder = f"{HOME}/environments/{env}"
        files[f"{folder}/infrastructure.yaml"] = INFRASTRUCTURE.format(env=env, services=service_list.format(replicas=replicas))
        files[f"{folder}/configuration.yaml"] = CONFIGURATION.format(env=env)
        files[f"{folder}/flags.yaml"] = FLAGS.format(env=env)
    for service in services:
        files[f"{HOME}/ops/runbooks/{service.name}.md"] = RUNBOOK.format(service=service.name)
    files[f"{HOME}/ops/oncall.yaml"] = ONCALL
    files[f"{HOME}/ops/escalation.yaml"] = ESCALATION
    files[".gitignore"] = GITIGNORE
    return files


def init_project(project: Path, services: Sequence[str] = ()) -> InitResult:
    """Write the starter files into ``project``; an existing file is never touched (skipped)."""
    project = project.resolve()
    try:
        project.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PredeployError(f"cannot create {project}: {exc.strerror}") from None
    parsed = [Service.parse(text, project) for text in services] or [Service.parse(DEFAULT_SERVICE, project)]
    names = [service.name for service in parsed]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise ConfigError(f"--service {duplicate} is given twice")
    result = InitResult(project)
    for relative, content in starter_files(project, parsed).items():
        path = project / relative
        data = content.encode() if isinstance(content, str) else content
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # 'x' creates the file or fails: nothing that exists is ever overwritten, even one
            # created between a check and the write.
            with path.open("xb") as handle:
                handle.write(data)
        except FileExistsError:
            result.skipped.append(relative)
            continue
        except OSError as exc:
            raise PredeployError(f"cannot write {path}: {exc.strerror}") from None
        if path.suffix == ".sh":
            path.chmod(0o755)
        result.written.append(relative)
    return result


def next_steps(result: InitResult) -> list[str]:
    """What the team does next, in order (printed by ``predeploy init``)."""
    steps = list(NEXT_STEPS)
    ignored = (result.project / ".gitignore").read_text(errors="replace").split() if ".gitignore" in result.skipped else []
    missing = [entry for entry in (".artifacts/", ".staging/", ".predeploy/") if ".gitignore" in result.skipped and entry not in ignored and entry.rstrip("/") not in ignored]
    if missing:
        named = [f"`{entry}`" for entry in missing]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        steps.append(f"Add {listed} to your .gitignore (the evidence of each run; the local staging target; the downloaded advisory database).")
    return steps


NEXT_STEPS = (
    "Point `services:` in predeploy.yaml at your services (lines marked SET ME): `source` is the folder each staging "
    "release copies, `command` starts it on 127.0.0.1. The service writes its port to {port_file} and answers GET "
    "/healthz (200), /version ({\"release\": TAG}), /metrics (Prometheus) and /routes (its business endpoints). "
    "Deploying elsewhere (Helm, kubectl ...)? Replace steps.deploy and steps.rollback and set services[].url "
    "(docs/custom-scripts.md of pytest-predeploy).",
    f"Write smoke tests for your business endpoints in {HOME}/smoke/ (Gate 2 needs smoke.min_coverage of the "
    "endpoints /routes lists).",
    f"Describe staging and production in {HOME}/environments/ (Gate 1 compares them).",
    f"For each release, record the upstream approvals: copy {HOME}/approvals/*.example.yaml to *.yaml and fill them in, "
    "or point approvals.upstream[].file at the records Protocols 4 and 9 publish.",
    "Security (Gate 3): run `predeploy advisories update` (it downloads osv.dev's PyPI advisories into "
    ".predeploy/osv-pypi.zip), and in CI before every protocol run; until then the OSV scan is 'unavailable' and "
    "blocks Gate 3. List your dependencies in security.requirements or security.distributions.",
    f"Fill in {HOME}/ops/ (runbooks, on-call, escalation) and readiness.required_roles.",
    "Run it: pytest --predeploy-release=<candidate tag> --predeploy-previous=<tag production runs now>. "
    "If this repository has its own tests, set testpaths (e.g. testpaths = tests) so plain pytest does not collect gates/.",
)


def starter_config(project: Path, services: Sequence[Service]) -> str:
    """The starting predeploy.yaml: valid as written, with what to change marked SET ME."""
    service_blocks = []
    for service in services:
        source = (
            f"source: {service.source}           # the folder each staging release copies"
            if service.source
            else "source: null                # SET ME: the folder holding this service's code (each staging release copies it)"
        )
        service_blocks.append(SERVICE_BLOCK.format(name=service.name, source=source))
    sources = [service.source for service in services if service.source]
    source_paths = (
        f"[{', '.join(sources)}]   # the release's source, scanned by bandit and detect-secrets"
        if sources
        else "[]               # SET ME: your source folders (bandit and detect-secrets scan them; none is 'unavailable')"
    )
    requirements = (
        "[requirements.txt]           # the release's requirements/lock files"
        if (project / "requirements.txt").is_file()
        else "[]              # SET ME: the release's requirements/lock files, e.g. [requirements.txt]"
    )
    runbooks = ", ".join(f"{HOME}/ops/runbooks/{service.name}.md" for service in services)
    approvals = "".join(
        f"    - name: {name}\n      title: {title}\n      file: {HOME}/approvals/{name}.yaml\n" for name, title in APPROVALS
    )
    return CONFIG.format(
        project=json.dumps(project.name), home=HOME, services="".join(service_blocks), source_paths=source_paths,
        requirements=requirements, runbooks=runbooks, approvals=approvals,
    )


CONFIG = """\
# pytest-predeploy configuration, written by `predeploy init`: the pre-deployment protocol
# (Protocol 10) of this repository as four ordered, halting pytest gates. Every key is in the
# configuration reference (docs/config-reference.md of pytest-predeploy). Lines marked SET ME
# need your values; then run
#   pytest --predeploy-release=<candidate tag> --predeploy-previous=<tag production runs now>
version: 1
project: {project}
previous_release: null          # SET ME: the release production runs now (rollback returns to it), or pass --predeploy-previous
target_environment: production
gates_dir: gates                # the gate modules: yours to keep in version control and extend

# --- environments: what staging parity compares (Gate 1) ---
environments:
  staging:
    description: Local staging on this machine (the embedded local staging target).
    infrastructure: [{home}/environments/staging/infrastructure.yaml]
    configuration: [{home}/environments/staging/configuration.yaml]   # YAML, JSON, TOML or .env; merged in order
    flags: [{home}/environments/staging/flags.yaml]
    # secrets:                  # compared by keyed fingerprint; values are never written anywhere
    #   env_vars: [DATABASE_PASSWORD]      # or file: path/to/secrets.env (kept out of git)
  production:
    description: Production baseline as declared by the platform team.
    infrastructure: [{home}/environments/production/infrastructure.yaml]
    configuration: [{home}/environments/production/configuration.yaml]
    flags: [{home}/environments/production/flags.yaml]

parity:
  default_severity: major       # a difference no rule matches
  rules:                        # first match wins; critical drift blocks Gate 1
    - {{path: "infrastructure.services[*].runtime", severity: critical}}
  ignore:                       # expected differences, listed as ignored
    - {{path: "infrastructure.services[*].replicas", reason: staging runs one replica per service}}
    - {{path: "**.hostname", reason: each environment has its own host names}}
  waivers: []                   # accepted drift: id, path, owner, justification, expires_at
  required_flags: {{}}            # feature flag -> state this release needs in staging

# --- services, deployed in this order to the local staging target (Gate 2) ---
# The local target copies `source` into <staging.root>/<env>/<service>/releases/<tag>/ and runs
# `command` there on 127.0.0.1. The service writes the port it bound to {{port_file}}, answers
# GET /healthz (200 when ready), /version ({{"release": "<tag>"}}; the tag is also in
# release-manifest.json in its working folder, or add --release {{release}} to the command),
# /metrics (Prometheus: http_requests_total and http_request_duration_seconds labelled method,
# route, status) and /routes ({{"routes": [{{"method": "GET", "path": "/items/{{id}}"}}]}}).
# Deploying elsewhere instead (Helm, kubectl ...): replace steps.deploy and steps.rollback and
# set each service's `url` (docs/custom-scripts.md).
services:
{services}
staging:
  root: .staging                # git-ignored: <root>/<env>/<service>/{{releases,current,slots,run,logs}}
  keep_releases: 5
  max_parallel: 1               # services deployed at once
  bootstrap: true               # deploy previous_release first where staging does not run it
  stop_on_exit: true            # nothing outlives the pytest session

# --- the command of each scripted step; the scripts in scripts/ are yours to change ---
steps:
  parity:
    command: "{{python}} scripts/compare_environments.py --source {{env}} --target {{target_env}} --output {{output}}"
    timeout: 5m
  deploy:
    command: "bash scripts/deploy_backend.sh --env {{env}} --release {{release}} --service {{service}}"
    timeout: 10m
  smoke:
    command: "{{python}} scripts/run_smoke_tests.py --env {{env}} --output {{output}}"
    timeout: 10m
  rollback:
    command: "bash scripts/rollback_backend.sh --env {{env}} --release {{previous_release}} --service {{service}}"
    timeout: 10m
  security:
    command: "{{python}} scripts/run_security_audit.py --env {{env}} --output {{output}}"
    timeout: 15m

# --- smoke and acceptance suites (Gate 2): plain pytest suites run against staging ---
smoke:
  min_coverage: 0.8             # endpoints the suites call / endpoints the services list on /routes
  suites:
    - name: smoke
      path: {home}/smoke
      timeout: 5m

# --- rollback rehearsal (Gate 3) ---
rollback:
  recovery_target_seconds: 60   # rollback start -> healthy on previous_release with its smoke subset green
  smoke: true
  smoke_select: "{{service}}"     # pytest -k expression of a service's smoke subset
  roll_forward: true            # end on the candidate

# --- upstream approvals (Gate 1): one record per release, see {home}/approvals/*.example.yaml ---
approvals:
  upstream:
{approvals}
# --- security and compliance audit (Gate 3): scripts/run_security_audit.py ---
# Every scanner fails closed: one that cannot run blocks Gate 3 until it can, or you set its
# `enabled: false` (reported 'disabled') or `fail_closed: false` (extra evidence only).
security:
  source_paths: {source_paths}
  environment: current          # where the release's distributions are installed: the Python running pytest
  requirements: {requirements}
  distributions: []             # or the release's root distributions in `environment`; with neither, all of it is scanned
  blocking_severity: major      # findings at or above block Gate 3 unless waived
  osv:
    # osv.dev's PyPI advisories, kept current by `predeploy advisories update` (run it in CI
    # before pytest: it downloads, checks and replaces this zip atomically). Until the first
    # update the OSV scan is 'unavailable' and blocks Gate 3.
    database: .predeploy/osv-pypi.zip
    max_age: 2d                 # measured from the download; an older copy is 'unavailable' too
  pip_audit:
    fail_closed: false          # asks PyPI online: extra evidence, not required offline
  # Licences: the default policy lets permissive licences pass, lets weak copyleft (MPL-2.0, LGPL-*,
  # EPL-2.0) pass as an unmodified dependency with a notice in the report, and sends GPL, AGPL,
  # unlisted and unknown licences to review (a waiver). Tighten it, e.g. `review: [MPL-2.0, "GPL-*", "AGPL-*"]`
  # or `deny: ["AGPL-*"]`; the strictest list an id is on wins (docs/config-reference.md).
  licenses: {{}}
  waivers: []                   # id, match {{id, scanner, package, file}}, owner, justification, expires_at

# --- operational readiness (Gate 3 guideline) ---
operational:
  runbooks: [{runbooks}]   # reviewed per release ('reviewed_for:' front matter, or git history since the previous tag)
  oncall: {home}/ops/oncall.yaml
  escalation: {home}/ops/escalation.yaml
  window: 4h                    # the production deployment window on-call must cover

# --- readiness review and deployment checklist (Gate 4) ---
readiness:
  required_roles: [release-manager, qa-lead]   # each signs: predeploy approve PACKAGE.zip --role ROLE --by NAME --decision go
  forbid_self_approval: true    # whoever ran the rehearsal cannot sign it off
  signoff_validity: 7d
  slow_step: 60s                # slower deploys/rollbacks become checklist items
  checklist_owners:
    deploy: release-manager
    rollback: sre-on-call
    security: security-owner
    default: release-manager
"""

SERVICE_BLOCK = """\
  - name: {name}
    {source}
    command: "{{python}} server.py --port {{port}} --port-file {{port_file}}"   # SET ME: how it starts
    port: 0                     # 0: a free port, recorded in the staging state
    strategy: restart           # or blue_green: start in the idle slot, rollback is the switchback
    health_path: /healthz
    health_timeout: 30s
"""

SMOKE_CONFTEST = '''\
"""Fixtures of the smoke suite: where the services are, and a small JSON HTTP client.

scripts/run_smoke_tests.py runs this folder as its own pytest session against staging. It says
where each service is in PREDEPLOY_SERVICE_URLS (a JSON object: service name -> base URL) and
which release should be running in PREDEPLOY_RELEASE. To run it by hand:

    PREDEPLOY_SERVICE_URLS='{"app": "http://127.0.0.1:8000"}' PREDEPLOY_RELEASE=v1.0 pytest predeploy/smoke

Gate 2 wants smoke.min_coverage of the endpoints your services list on /routes called by these
tests. Put the service's name in each test's name (or take a `service` argument): after a
rollback the rehearsal runs each service's subset with -k <service>.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest


def service_urls() -> dict[str, str]:
    return {name: url.rstrip("/") for name, url in json.loads(os.environ.get("PREDEPLOY_SERVICE_URLS", "{}")).items()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test taking `service` runs once per service, and its id names the service.
    if "service" in metafunc.fixturenames:
        metafunc.parametrize("service", sorted(service_urls()))


@pytest.fixture(scope="session")
def urls() -> dict[str, str]:
    found = service_urls()
    if not found:
        pytest.skip("PREDEPLOY_SERVICE_URLS is not set: this suite runs against staging through scripts/run_smoke_tests.py")
    return found


@pytest.fixture(scope="session")
def release() -> str:
    return os.environ.get("PREDEPLOY_RELEASE", "")


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One request; returns the status and the answer (JSON decoded when it is JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@pytest.fixture(scope="session")
def http() -> Any:
    return call
'''

SMOKE_OPERATIONAL = '''\
"""Every service is up, healthy and running the release under test."""

from __future__ import annotations

from typing import Any


def test_healthz_answers_ok(service: str, urls: dict[str, str], http: Any) -> None:
    status, body = http("GET", urls[service] + "/healthz")
    assert status == 200, f"{service}: GET /healthz -> {status} {body}"


def test_version_is_the_release_under_test(service: str, urls: dict[str, str], release: str, http: Any) -> None:
    status, body = http("GET", urls[service] + "/version")
    assert status == 200, f"{service}: GET /version -> {status} {body}"
    reported = body.get("release") if isinstance(body, dict) else body
    assert reported == release, f"{service} runs {reported}, expected {release}"
'''

_APPROVAL_HEADER = """\
# {title}: an EXAMPLE record. Gate 1 reads {name}.yaml beside this file: copy this
# example there for each release and fill it in (or point approvals.upstream[].file in
# predeploy.yaml at the record your process publishes). Required: release (the tag under
# validation), status (approved | rejected | pending), approved_by, approved_at (with a time
# zone); optional: expires_at and waivers (id, owner, justification, expires_at). Other keys are
# kept as evidence.
"""

APPROVAL_EXAMPLES = {
    "protocol-4-quality-audit": _APPROVAL_HEADER + """\
protocol: 4
release: v1.0
status: approved
approved_by: Your Quality Lead
approved_at: {today}T00:00:00Z
expires_at: {expires}T09:00:00Z
findings: {{critical: 0, major: 0, minor: 0}}
""",
    "protocol-9-integration-signoff": _APPROVAL_HEADER + """\
protocol: 9
release: v1.0
status: approved
approved_by: Your Integration Lead
approved_at: {today}T00:00:00Z
expires_at: {expires}T14:00:00Z
evidence_bundle: integration-evidence-v1.0.zip
""",
    "security-waivers": _APPROVAL_HEADER + """\
release: v1.0
status: approved
approved_by: Your Security Owner
approved_at: {today}T00:00:00Z
expires_at: {expires}T11:00:00Z
waivers: []       # e.g. - {{id: SEC-1, owner: ..., justification: ..., expires_at: 2026-03-01T00:00:00Z}}
""",
}

INFRASTRUCTURE = """\
# {env} infrastructure as declared (SET ME). scripts/compare_environments.py compares staging
# with production key by key: runtimes, database and cache engines and versions, TLS, limits ...
# Differences are drift, graded by parity.rules in predeploy.yaml; parity.ignore lists the
# expected ones (replicas, host names).
services:
{services}"""

CONFIGURATION = """\
# {env} application configuration, non-secret (SET ME). Compared with the other environment's;
# secrets belong in environments.{env}.secrets, never here.
logging:
  format: json
"""

FLAGS = """\
# {env} feature flag states (SET ME): flag -> state. parity.required_flags names the states
# the release needs in staging.
{{}}
"""

RUNBOOK = """\
---
service: {service}
owner: SET ME
reviewed_for: unreviewed        # SET ME to the release tag each time you review this runbook
---
# Runbook: `{service}`

## What it is
SET ME: what the service does, what it depends on, what is lost when an instance dies.

## Health
- `GET /healthz` answers 200 when the service is ready.
- `GET /version` answers the release tag it was deployed as.

## Deploy and roll back
- Deploy: `bash scripts/deploy_backend.sh --env production --release <tag> --service {service}`.
- Roll back: `bash scripts/rollback_backend.sh --env production --release <previous tag> --service {service}`;
  `rollback-verification-report.json` of the rehearsal gives the expected recovery time.

## When it is unhealthy
1. Check `/healthz` and the service log.
2. Error ratio high after a deploy: roll back first, investigate second.
3. Escalate per the escalation matrix when not recovered within 15 minutes.
"""

ONCALL = """\
# On-call schedule (SET ME). Gate 3 checks that the production deployment window
# (operational.window) is covered. Repeating rotations, and fixed shifts for overrides:
#   rotations:
#     - {name: primary, start: 2026-01-05T09:00:00Z, shift: 7d, people: [Alex, Bea, Cy]}
#   shifts:
#     - {who: Dee, start: 2026-02-01T09:00:00Z, end: 2026-02-02T09:00:00Z}
team: SET ME
rotations: []
shifts: []
"""

ESCALATION = """\
# Escalation matrix (SET ME): who is paged, how, and when to go one level up. Gate 3 wants at
# least one level, e.g.
#   levels:
#     - {level: 1, who: On-call primary, contact: "pager: team-primary", after: 0m}
#     - {level: 2, who: Engineering manager, contact: "phone: ...", after: 30m}
team: SET ME
levels: []
"""

GITIGNORE = """\
# pytest-predeploy: the evidence of each run, the local staging target, the advisory database
.artifacts/
.staging/
.predeploy/
"""
