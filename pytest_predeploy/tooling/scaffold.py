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
from pytest_predeploy.targets.settings import SERVICE_NAME
from pytest_predeploy.tooling.detect import Detection, detect_service, service_block

#: Where the team's own protocol inputs go (everything but the config, gates/ and scripts/).
HOME = "predeploy"
DEFAULT_SERVICE = "app"

TemplateKind = Literal["gates", "scripts"]
_PACKAGED = {"gates": "gate_templates", "scripts": "script_templates"}
_PATTERNS = {"gates": ("*.py",), "scripts": ("*.py", "*.sh")}
#: The starter files other than the gates and scripts: real files, so they can be read, linted
#: and diffed as what they are.
TEMPLATES = Path(__file__).parent / "templates"


def _template(name: str) -> str:
    """A starter file's text from ``templates/`` (shipped as package data); ``.tmpl`` files are
    ``str.format`` templates, the others are copied as they are."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


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
                raise ConfigError(
                    f"--service {text!r}: the source must be a folder of the service's own, not the repository (or above it): each staging release is a copy of it"
                )
            return cls(name, Path(source).as_posix())
        # Without a PATH, a folder named like the service is taken to be its source.
        return cls(name, name if (project / name).is_dir() else None)


@dataclass
class InitResult:
    """What ``predeploy init`` did, as paths relative to the project folder."""

    project: Path
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Existing files init added lines to (only .gitignore): path -> the lines added.
    appended: dict[str, list[str]] = field(default_factory=dict)


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
    files[f"{HOME}/signers.yaml"] = SIGNERS
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
            added = _append_missing_lines(path, data.decode()) if relative == ".gitignore" else None
            if added:
                result.appended[relative] = added
            else:
                result.skipped.append(relative)
            continue
        except OSError as exc:
            raise PredeployError(f"cannot write {path}: {exc.strerror}") from None
        if path.suffix == ".sh":
            path.chmod(0o755)
        result.written.append(relative)
    return result


def _append_missing_lines(path: Path, template: str) -> list[str] | None:
    """Add to an existing ignore file the entries of ``template`` it lacks (``x/`` and ``x``
    count as the same); nothing it holds is changed. Returns the entries added, or None."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    present = {line.strip().rstrip("/") for line in text.splitlines()}
    comment = next((line for line in template.splitlines() if line.startswith("#")), "")
    missing = [line for line in template.splitlines() if line and not line.startswith("#") and line.rstrip("/") not in present]
    if not missing:
        return None
    block = ("" if text.endswith("\n") or not text else "\n") + "\n".join([comment, *missing]) + "\n"
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(block)
    except OSError as exc:
        raise PredeployError(f"cannot add {', '.join(missing)} to {path}: {exc.strerror}") from None
    return missing


def next_steps(result: InitResult) -> list[str]:
    """What the team does next, in order (printed by ``predeploy init``)."""
    return list(NEXT_STEPS)


NEXT_STEPS = (
    "Check `services:` in predeploy.yaml: init filled in the start command, port, health path and endpoint source it "
    "found in each service's folder, and marked SET ME what it could not find; a service released as wheels in dist/ is "
    "installed per release (staging.releases kind dist: its command's {python} is the release's own virtualenv). Deploying elsewhere (Helm, kubectl ...)? "
    "Replace steps.deploy and steps.rollback and set services[].url (docs/custom-scripts.md of pytest-predeploy).",
    f"Write smoke tests for your business endpoints in {HOME}/smoke/, calling them through the `predeploy_http` fixture "
    "(its calls count as coverage when a service has no request counter); Gate 2 needs smoke.min_coverage of the declared endpoints.",
    f"Describe staging and production in {HOME}/environments/ (Gate 1 compares them).",
    f"For each release, record the upstream approvals: copy {HOME}/approvals/*.example.yaml to *.yaml and fill them in, "
    "or point approvals.upstream[].file at the records Protocols 4 and 9 publish.",
    "Security (Gate 3): run `predeploy advisories update` (it downloads osv.dev's PyPI advisories into "
    ".predeploy/osv-pypi.zip), and in CI before every protocol run; until then the OSV scan is 'unavailable' and "
    "blocks Gate 3. The audit scans what the local target deploys (security.environment: release): a release built as "
    "a wheel (staging.releases kind dist) in its own virtualenv; for a release that runs on pytest's interpreter, name "
    "its lock file in security.requirements. bandit and detect-secrets read security.source_paths (init fills them in from "
    "each service's folder; for a service released as wheels, name its source folder); a finding you accept goes into "
    "security.waivers with an owner and an expiry. A service of the standard library alone has none to scan: set "
    "`enabled: false` on security.osv, security.licenses and security.sbom (reported 'disabled', never as a clean scan).",
    f"Fill in {HOME}/ops/ (runbooks, on-call, escalation) and readiness.required_roles.",
    f"List who may sign off which role in {HOME}/signers.yaml: each reviewer makes a key with "
    "`ssh-keygen -t ed25519 -f ~/.ssh/predeploy_ed25519` (or uses the one they sign git commits with) and adds the "
    "content of the .pub file under their identity; they sign with `predeploy approve PACKAGE.zip --role ROLE --key KEY --decision go`.",
    "Check it all without deploying: `predeploy doctor` (one line per check, each with its fix).",
    "Run it: pytest --predeploy-release=<candidate tag> --predeploy-previous=<tag production runs now>. "
    "If this repository has its own tests, set testpaths (e.g. testpaths = tests) so plain pytest does not collect gates/.",
)


def detected(project: Path, service: Service) -> Detection:
    """What the service's folder says about how it starts (nothing without a folder)."""
    if service.source is None and released_as_wheels(project, service.name):
        return Detection(todo=["set `command`: how the installed service starts"])
    if service.source is None:
        return Detection(todo=["set `source`: the folder holding the service's code"])
    return detect_service(project / service.source, service.name)


#: Where init looks for a service's built distributions (the folder ``python -m build`` writes).
DIST = "dist"

RELEASES_FROM_GIT = "    kind: auto                  # git: each tag's own code (git tag v1.2); uncommitted changes are never deployed under a tag's name\n"
RELEASES_FROM_WHEELS = (
    "    kind: dist                  # found in dist/: each release is its wheel, installed in a virtualenv of its own\n"
    '    dist: "dist/{service}-{version}-*.whl"   # {version}: the tag without its v (v1.2.0 -> 1.2.0)\n'
    "    pip_args: [--no-index, --find-links, dist]   # its dependencies as wheels beside it (paths from this file's folder);\n"
    "                                # a lock per release: add --constraint, 'locks/{release}.txt'\n"
)


def released_as_wheels(project: Path, name: str) -> bool:
    """Whether ``dist/`` holds wheels of the service (named as its distribution)."""
    return any((project / DIST).glob(f"{name.replace('-', '_')}-*.whl")) or any((project / DIST).glob(f"{name}-*.whl"))


def starter_config(project: Path, services: Sequence[Service]) -> str:
    """The starting predeploy.yaml: valid as written, with what to change marked SET ME."""
    service_blocks = [
        service_block(service.name, service.source, detected(project, service), wheels=released_as_wheels(project, service.name)) for service in services
    ]
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
    approvals = "".join(f"    - name: {name}\n      title: {title}\n      file: {HOME}/approvals/{name}.yaml\n" for name, title in APPROVALS)
    wheels = any(released_as_wheels(project, service.name) for service in services)
    return CONFIG.format(
        project=json.dumps(project.name),
        releases=RELEASES_FROM_WHEELS if wheels else RELEASES_FROM_GIT,
        home=HOME,
        services="".join(service_blocks),
        source_paths=source_paths,
        requirements=requirements,
        runbooks=runbooks,
        approvals=approvals,
    )


CONFIG = _template("predeploy.yaml.tmpl")

SMOKE_CONFTEST = _template("smoke/conftest.py")

SMOKE_OPERATIONAL = _template("smoke/test_operational.py")

APPROVAL_EXAMPLES = {name: _template(f"approvals/{name}.example.yaml.tmpl") for name, _ in APPROVALS}

INFRASTRUCTURE = _template("environments/infrastructure.yaml.tmpl")

CONFIGURATION = _template("environments/configuration.yaml.tmpl")

FLAGS = _template("environments/flags.yaml.tmpl")

RUNBOOK = _template("ops/runbook.md.tmpl")

ONCALL = _template("ops/oncall.yaml")

ESCALATION = _template("ops/escalation.yaml")

SIGNERS = _template("signers.yaml")

GITIGNORE = _template("gitignore")
