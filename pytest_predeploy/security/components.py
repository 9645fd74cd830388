"""The release's Python distributions: from its requirements/lock files, from an installed
environment, or both (the files name the roots, the environment supplies versions, the installed
dependency closure and the licence metadata)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import Distribution, distributions
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pytest_predeploy.core import commands
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.core.nesting import json_loads
from pytest_predeploy.core.yamlfile import read_text_file
from pytest_predeploy.security.policy import SecurityConfig

_OPTION = re.compile(r"\s+--?[A-Za-z]")
_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s*=?\s*)(\S.*)$")


@dataclass
class Component:
    name: str
    version: str | None
    #: Every place that asks for this distribution at this version ('file:line', 'dependency of x').
    origins: list[str]
    dist: Distribution | None = field(default=None, repr=False)
    note: str = ""

    @property
    def source(self) -> str:
        return "; ".join(self.origins)


@dataclass
class PinMismatch:
    """A requirement the installed distribution does not satisfy: the environment is not the release."""

    name: str
    requirement: str
    origin: str
    installed: str


@dataclass
class MarkerEnvironment:
    """The PEP 508 marker variables of the Python the release runs on, and where they came from."""

    values: dict[str, str]
    source: str

    def describe(self) -> str:
        return f"Python {self.values['python_full_version']} ({self.source})"


@dataclass
class DependencyTarget:
    components: list[Component]
    targets: list[str]
    #: The environment's folders (None: the running interpreter's sys.path), when one is configured.
    environment: str | None
    #: True when every distribution of a virtualenv or the running interpreter is scanned.
    whole_environment: bool
    venv_python: Path | None
    problems: list[str]
    #: Requirements whose installed version does not satisfy them.
    mismatches: list[PinMismatch] = field(default_factory=list)
    #: Requirement lines left out because their environment marker is false for the target Python.
    skipped: list[str] = field(default_factory=list)
    markers: MarkerEnvironment | None = None
    #: Why there is nothing to scan, when the configuration says so (the scanners report it).
    unavailable: str | None = None

    def pins(self) -> str:
        """The components as a pinned requirements file (what the SBOM and pip-audit describe);
        a distribution pinned at two versions is listed twice, as both tools accept."""
        return "".join(f"{c.name}=={c.version}\n" for c in self.components if c.version)


def _venv_python(folder: Path) -> Path | None:
    for candidate in (folder / "bin" / "python", folder / "Scripts" / "python.exe"):
        if candidate.exists():
            return candidate
    return None


def _site_dirs(folder: Path) -> list[Path]:
    if (folder / "pyvenv.cfg").is_file():
        found = sorted(folder.glob("lib/python*/site-packages")) + sorted(folder.glob("Lib/site-packages"))
        if not found:
            raise ConfigError(f"security.environment: {folder} is a virtualenv without a site-packages folder")
        return found
    return [folder]


def merged(parts: list[tuple[str, DependencyTarget]]) -> DependencyTarget:
    """Several services' dependency targets as one (``parts``: service name -> its target); a
    distribution both use is one component with the origins of both."""
    if len(parts) == 1:
        return parts[0][1]
    components: dict[tuple[str, str | None], Component] = {}
    whole = DependencyTarget(components=[], targets=[], environment=None, whole_environment=False, venv_python=None, problems=[])
    for service, part in parts:
        for component in part.components:
            kept = components.setdefault((component.name, component.version), Component(component.name, component.version, [], component.dist, component.note))
            kept.origins += [f"{service}: {origin}" for origin in component.origins]
        whole.targets += [f"{service}: {target}" for target in part.targets]
        whole.problems += [f"{service}: {problem}" for problem in part.problems]
        whole.mismatches += part.mismatches
        whole.skipped += part.skipped
        whole.markers = whole.markers or part.markers
        whole.unavailable = whole.unavailable or part.unavailable
    whole.components = sorted(components.values(), key=lambda c: (c.name, c.version or ""))
    return whole


def installed(environment: str | Path) -> dict[str, Distribution]:
    """Distributions by normalised name; the first on the path wins, as for imports."""
    if environment == "current":
        found: Iterable[Distribution] = distributions()
    else:
        folder = Path(environment)
        if not folder.is_dir():
            raise ConfigError(f"security.environment: folder not found: {folder} (give a virtualenv, a site-packages folder, or 'current')")
        found = distributions(path=[str(p) for p in _site_dirs(folder)])
    result: dict[str, Distribution] = {}
    for dist in found:
        name = dist.metadata["Name"]
        if name:
            result.setdefault(canonicalize_name(name), dist)
    return result


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def read_requirements(
    path: Path, seen: set[Path] | None = None, markers: dict[str, str] | None = None, skipped: list[str] | None = None
) -> list[tuple[Requirement, str]]:
    """Requirements of a pip requirements file, with 'file:line' origins; -r includes followed.

    Environment markers are evaluated for ``markers`` (default: the running interpreter); the
    lines they leave out are appended to ``skipped``, without any URL the line may carry."""
    seen = seen if seen is not None else set()
    resolved = path.resolve()
    if resolved in seen:
        return []
    seen.add(resolved)
    text = read_text_file(path, "requirements file")
    result: list[tuple[Requirement, str]] = []
    for number, line in _logical_lines(text):
        origin = f"{path}:{number}"
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            result += read_requirements(path.parent / include.group(1).strip(), seen, markers, skipped)
            continue
        if line.startswith("-"):
            continue  # index options, constraints, hashes on their own line: not distributions
        try:
            # Per-requirement options (--hash=...) follow the requirement itself.
            requirement = Requirement(_OPTION.split(line, maxsplit=1)[0])
        except InvalidRequirement as exc:
            raise ConfigError(f"{origin}: not a requirement ({exc})") from None
        if requirement.marker is None or requirement.marker.evaluate(dict(markers) if markers else None):
            result.append((requirement, origin))
        elif skipped is not None:
            skipped.append(f"{origin}: {requirement.name}{requirement.specifier} ; {requirement.marker}")
    return result


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _wanted(marker: Marker | None, extras: set[str], markers: dict[str, str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**markers, "extra": extra}) for extra in extras | {""})


#: packaging.markers.default_environment() for an interpreter that may not have packaging.
_MARKER_SCRIPT = """
import json, os, platform, sys
def full(info):
    text = f"{info.major}.{info.minor}.{info.micro}"
    return text + info.releaselevel[0] + str(info.serial) if info.releaselevel != "final" else text
print(json.dumps({
    "implementation_name": sys.implementation.name, "implementation_version": full(sys.implementation.version),
    "os_name": os.name, "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_system": platform.system(), "platform_version": platform.version(),
    "python_full_version": platform.python_version(), "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
}))
"""
_SITE_PYTHON = re.compile(r"^python(\d+)\.(\d+)t?$")


def _interpreter_markers(python: Path) -> dict[str, str]:
    try:
        run = commands.run([str(python), "-I", "-c", _MARKER_SCRIPT], timeout=60)
        values = json_loads(run.stdout) if run.returncode == 0 else None
    except (OSError, commands.TimedOut, ValueError):
        values = None
    if not isinstance(values, dict):
        raise ConfigError(f"security.environment: cannot run {python} to learn which Python the release runs on; set security.target_python (e.g. '3.11')")
    return {str(k): str(v) for k, v in values.items()}


def marker_environment(config: SecurityConfig) -> MarkerEnvironment:
    """For which Python environment markers are evaluated: security.target_python, else the
    interpreter of the dependency environment, else the interpreter running the audit."""
    values: dict[str, str] = {str(k): str(v) for k, v in default_environment().items()}
    source = "the interpreter running the audit"
    environment = config.environment
    if isinstance(environment, Path) and (environment / "pyvenv.cfg").is_file() and (python := _venv_python(environment)) is not None:
        values, source = _interpreter_markers(python), f"the interpreter of {environment}"
    elif isinstance(environment, Path):
        found = next((m for part in environment.resolve().parts if (m := _SITE_PYTHON.match(part))), None)
        if found:
            version = f"{found.group(1)}.{found.group(2)}"
            values.update(python_version=version, python_full_version=f"{version}.0")
            source = f"the python{version} folder of {environment}"
    elif environment == "current":
        source = f"the interpreter of environment: current ({sys.executable})"
    if config.target_python:
        full = config.target_python if config.target_python.count(".") >= 2 else f"{config.target_python}.0"
        values.update(python_version=".".join(full.split(".")[:2]), python_full_version=full, implementation_version=full)
        source = "security.target_python"
    return MarkerEnvironment(values, source)


def resolve_dependencies(config: SecurityConfig) -> DependencyTarget:
    env = installed(config.environment) if config.environment is not None else None
    markers = marker_environment(config)
    targets = [f"requirements: {p}" for p in config.requirements]
    if config.distributions:
        targets.append(f"distributions: {', '.join(config.distributions)}")
    if config.environment is not None:
        targets.append(f"environment: {config.environment if config.environment != 'current' else 'current (' + sys.executable + ')'}")
    problems: list[str] = []
    mismatches: list[PinMismatch] = []
    skipped: list[str] = []
    # Keyed by (name, version): the same distribution pinned at two versions (two services'
    # requirement files, or a file and its -r include) is two components, each matched.
    components: dict[tuple[str, str | None], Component] = {}

    def add(name: str, version: str | None, origin: str, dist: Distribution | None, note: str = "") -> None:
        component = components.setdefault((name, version), Component(name, version, [], dist, note))
        if origin not in component.origins:
            component.origins.append(origin)

    roots: list[tuple[Requirement, str]] = []
    for path in config.requirements:
        if not path.is_file():
            raise ConfigError(f"security.requirements: file not found: {path}")
        roots += read_requirements(path, markers=markers.values, skipped=skipped)
    roots += [(Requirement(name), "security.distributions") for name in config.distributions]

    whole = env is not None and not roots
    if whole and env is not None:
        for name, installed_dist in sorted(env.items()):
            add(name, installed_dist.version, "environment", installed_dist)
    queue: list[tuple[str, set[str]]] = []
    for requirement, origin in roots:
        name, pin = canonicalize_name(requirement.name), pinned_version(requirement)
        dist = env.get(name) if env is not None else None
        satisfied = dist is None or not requirement.specifier or requirement.specifier.contains(dist.version, prereleases=True)
        if not satisfied and dist is not None:
            mismatches.append(PinMismatch(name, f"{requirement.name}{requirement.specifier}", origin, dist.version))
        if pin is not None:
            add(name, pin, origin, dist if satisfied else None, "" if satisfied else f"installed {dist.version if dist else '?'} does not satisfy the pin")
        elif dist is not None and satisfied:
            add(name, dist.version, origin, dist)
        elif dist is None:
            where = "not installed in the environment" if env is not None else "no environment configured to resolve it"
            problems.append(f"{origin}: {name} is not pinned and {where}")
            add(name, None, origin, None)
        # An installed version outside the requirement is not the release's: its dependencies
        # are not followed, and the mismatch itself is the finding.
        if env is not None and dist is not None and satisfied:
            queue.append((name, set(requirement.extras)))
    # The installed dependency closure of the roots: what the release really imports from.
    expanded: set[tuple[str, frozenset[str]]] = set()
    while queue and env is not None:
        name, extras = queue.pop()
        if (name, frozenset(extras)) in expanded:
            continue
        expanded.add((name, frozenset(extras)))
        for spec in env[name].requires or []:
            requirement = Requirement(spec)
            if not _wanted(requirement.marker, extras, markers.values):
                continue
            dep = canonicalize_name(requirement.name)
            dep_dist = env.get(dep)
            if dep_dist is None:
                problems.append(f"{dep} (required by {name}) is not installed in the environment")
                continue
            add(dep, dep_dist.version, f"dependency of {name}", dep_dist)
            queue.append((dep, set(requirement.extras)))
    venv_python = None
    if whole and isinstance(config.environment, Path) and (config.environment / "pyvenv.cfg").is_file():
        venv_python = _venv_python(config.environment)
    return DependencyTarget(
        components=sorted(components.values(), key=lambda c: (c.name, c.version or "")),
        targets=targets,
        environment=str(config.environment) if config.environment is not None else None,
        whole_environment=whole and (config.environment == "current" or venv_python is not None),
        venv_python=venv_python,
        problems=problems,
        mismatches=mismatches,
        skipped=skipped,
        markers=markers,
    )
