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

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pytest_predeploy.errors import ConfigError
from pytest_predeploy.security.policy import SecurityConfig
from pytest_predeploy.yamlfile import read_text_file

_OPTION = re.compile(r"\s+--?[A-Za-z]")
_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s*=?\s*)(\S.*)$")


@dataclass
class Component:
    name: str
    version: str | None
    source: str
    dist: Distribution | None = field(default=None, repr=False)
    note: str = ""


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

    def pins(self) -> str:
        """The components as a pinned requirements file (what the SBOM and pip-audit describe)."""
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


def read_requirements(path: Path, seen: set[Path] | None = None) -> list[tuple[Requirement, str]]:
    """Requirements of a pip requirements file, with 'file:line' origins; -r includes followed."""
    seen = seen or set()
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
            result += read_requirements(path.parent / include.group(1).strip(), seen)
            continue
        if line.startswith("-"):
            continue  # index options, constraints, hashes on their own line: not distributions
        try:
            # Per-requirement options (--hash=...) follow the requirement itself.
            requirement = Requirement(_OPTION.split(line, maxsplit=1)[0])
        except InvalidRequirement as exc:
            raise ConfigError(f"{origin}: not a requirement ({exc})") from None
        if requirement.marker is None or requirement.marker.evaluate():
            result.append((requirement, origin))
    return result


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _wanted(marker: Marker | None, extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({"extra": extra}) for extra in extras | {""})


def resolve_dependencies(config: SecurityConfig) -> DependencyTarget:
    env = installed(config.environment) if config.environment is not None else None
    targets = [f"requirements: {p}" for p in config.requirements]
    if config.distributions:
        targets.append(f"distributions: {', '.join(config.distributions)}")
    if config.environment is not None:
        targets.append(f"environment: {config.environment if config.environment != 'current' else 'current (' + sys.executable + ')'}")
    problems: list[str] = []
    components: dict[str, Component] = {}
    roots: list[tuple[str, set[str], str, str | None]] = []  # name, extras, origin, pin
    for path in config.requirements:
        if not path.is_file():
            raise ConfigError(f"security.requirements: file not found: {path}")
        for requirement, origin in read_requirements(path):
            roots.append((canonicalize_name(requirement.name), set(requirement.extras), origin, pinned_version(requirement)))
    roots += [(canonicalize_name(name), set(), "security.distributions", None) for name in config.distributions]

    whole = env is not None and not roots
    if whole and env is not None:
        for name, installed_dist in sorted(env.items()):
            components[name] = Component(name, installed_dist.version, "environment", installed_dist)
    queue: list[tuple[str, set[str], str]] = []
    for name, extras, origin, pin in roots:
        dist = env.get(name) if env is not None else None
        if pin is not None:
            note = f"installed {dist.version} differs from the pin" if dist is not None and dist.version != pin else ""
            components[name] = Component(name, pin, origin, dist if not note else None, note)
        elif dist is not None:
            components.setdefault(name, Component(name, dist.version, origin, dist))
        else:
            where = "not installed in the environment" if env is not None else "no environment configured to resolve it"
            problems.append(f"{origin}: {name} is not pinned and {where}")
            components.setdefault(name, Component(name, None, origin))
        if env is not None and dist is not None:
            queue.append((name, extras, origin))
    # The installed dependency closure of the roots: what the release really imports from.
    expanded: set[tuple[str, frozenset[str]]] = set()
    while queue and env is not None:
        name, extras, _ = queue.pop()
        if (name, frozenset(extras)) in expanded:
            continue
        expanded.add((name, frozenset(extras)))
        for spec in env[name].requires or []:
            requirement = Requirement(spec)
            if not _wanted(requirement.marker, extras):
                continue
            dep = canonicalize_name(requirement.name)
            dep_dist = env.get(dep)
            if dep_dist is None:
                problems.append(f"{dep} (required by {name}) is not installed in the environment")
                continue
            components.setdefault(dep, Component(dep, dep_dist.version, f"dependency of {name}", dep_dist))
            queue.append((dep, set(requirement.extras), name))
    venv_python = None
    if whole and isinstance(config.environment, Path) and (config.environment / "pyvenv.cfg").is_file():
        venv_python = _venv_python(config.environment)
    return DependencyTarget(
        components=sorted(components.values(), key=lambda c: c.name),
        targets=targets,
        environment=str(config.environment) if config.environment is not None else None,
        whole_environment=whole and (config.environment == "current" or venv_python is not None),
        venv_python=venv_python,
        problems=problems,
    )
