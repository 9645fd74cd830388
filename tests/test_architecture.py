"""The shape of the code, read from its imports (module level, inside functions and under
``TYPE_CHECKING`` alike): no import cycle, layers that depend one way, and gate modules, scripts
and init templates that use only the public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_predeploy"

#: Layers, lowest first: a module may import its own layer and those below, never above.
#: The package root and ``api`` are the public facade over all of them.
LAYERS: dict[str, set[str]] = {
    "core": {"core"},
    "targets": {"targets", "staging"},
    "domain": {"intake", "rehearsal", "rollback", "security", "readiness", "verdict", "data"},
    "config": {"config"},
    "harness": {"harness", "plugin"},
    "tooling": {"tooling", "__main__"},
    "facade": {"", "api"},
}
ORDER = list(LAYERS)
PUBLIC = {"pytest_predeploy", "pytest_predeploy.api"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


TEMPLATES = PACKAGE / "tooling" / "templates"
MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py") if TEMPLATES not in path.parents}


def imported(path: Path, name: str) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports, with the line, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                yield (full if full in MODULES else source), node.lineno


def internal(name: str) -> str | None:
    """The module of ours that ``name`` is, or lies in; None for anything else."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, dict[str, int]]:
    edges: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        targets = edges.setdefault(name, {})
        for target, line in imported(path, name):
            found = internal(target)
            if found is not None and found != name:
                targets.setdefault(found, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> str:
    first = name.split(".")[1] if "." in name else ""
    for layer, members in LAYERS.items():
        if first in members:
            return layer
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS in {Path(__file__).name}")


def test_the_import_graph_is_read() -> None:
    edges = graph()
    assert "pytest_predeploy.config" in edges["pytest_predeploy.harness.session"]
    assert "pytest_predeploy.targets.local.target" in edges["pytest_predeploy.targets.local"]


def test_no_import_cycle() -> None:
    edges = graph()
    found = cycles(edges)
    described = [" ; ".join(f"{a}:{edges[a][b]} -> {b}" for a in component for b in component if b in edges[a]) for component in found]
    assert not found, "import cycles:\n  " + "\n  ".join(described)


def package_of(name: str) -> str:
    """The package a module belongs to: a package is its ``__init__``; the root package's own
    modules (``config``, ``api``, ``plugin``, ...) are layers of their own and stand alone."""
    if MODULES[name].name == "__init__.py" or name.count(".") <= 1:
        return name
    return name.rpartition(".")[0]


def package_graph() -> tuple[dict[str, dict[str, str]], dict[str, set[str]]]:
    """Package -> the packages it imports, each with one module-level edge that shows why."""
    edges: dict[str, dict[str, str]] = {}
    for name, targets in graph().items():
        mine = edges.setdefault(package_of(name), {})
        for target, line in targets.items():
            theirs = package_of(target)
            if theirs != package_of(name):
                mine.setdefault(theirs, f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}")
    return edges, {package: set(targets) for package, targets in edges.items()}


def test_no_import_cycle_between_packages() -> None:
    """A subpackage that imports its parent while the parent imports it (``targets`` <->
    ``targets.kube``) is a cycle no module-level check sees: neither package can be read,
    tested or replaced without the other."""
    why, edges = package_graph()
    found = cycles({package: {target: 0 for target in targets} for package, targets in edges.items()})
    described = ["\n    ".join(f"{a} -> {b}: {why[a][b]}" for a in component for b in component if b in edges[a]) for component in found]
    assert not found, "package import cycles:\n    " + "\n\n    ".join(described)


def test_layers_depend_one_way() -> None:
    wrong = []
    for name, targets in graph().items():
        mine = ORDER.index(layer_of(name))
        for target, line in targets.items():
            theirs = ORDER.index(layer_of(target))
            if theirs > mine:
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{line}: {layer_of(name)} module {name} imports {layer_of(target)} module {target}")
    assert not wrong, "\n".join(wrong)


def _user_code() -> list[Path]:
    # gates/ and scripts/ are also the templates `predeploy init` copies (package data), beside
    # the starter files in tooling/templates.
    return sorted([*(ROOT / "gates").glob("*.py"), *(ROOT / "scripts").glob("*.py"), *TEMPLATES.rglob("*.py")])


def test_the_user_code_is_found() -> None:
    found = {path.relative_to(ROOT).as_posix() for path in _user_code()}
    assert {"gates/test_gate1_intake.py", "scripts/run_smoke_tests.py", "pytest_predeploy/tooling/templates/smoke/conftest.py"} <= found


@pytest.mark.parametrize("path", _user_code(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_gates_scripts_and_templates_use_only_the_public_api(path: Path) -> None:
    used = sorted({name for name, _ in imported(path, "") if name.split(".")[0] == "pytest_predeploy"})
    assert set(used) <= PUBLIC, f"{path.relative_to(ROOT)} imports internal modules {sorted(set(used) - PUBLIC)}; use pytest_predeploy.api"


def test_one_declaration_per_artifact() -> None:
    from pytest_predeploy.core.artifacts import ARTIFACTS
    from pytest_predeploy.harness.steps import FIXTURE_ARTIFACTS
    from pytest_predeploy.readiness.package import REQUIRED_ARTIFACTS
    from pytest_predeploy.tooling.docs import artifact_models

    declared = [artifact.name for artifact in ARTIFACTS]
    assert len(declared) == len(set(declared)), "an artifact is declared twice"
    # The tables other code reads are the registry's, not copies of it.
    assert [name for names in FIXTURE_ARTIFACTS.values() for name in names] == [a.name for a in ARTIFACTS if a.fixture]
    assert list(REQUIRED_ARTIFACTS) == [a.name for a in ARTIFACTS if a.required]
    assert list(artifact_models()) == [a.name for a in ARTIFACTS if a.model]


def test_every_package_is_listed_for_the_wheel() -> None:
    """setuptools is given the package list by hand: a package missing from it is missing from
    every install that is not editable, and the plugin fails to import there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "pytest_predeploy").rglob("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"


def test_the_entry_point_stays_cheap_for_plain_pytest() -> None:
    """Every pytest run in a venv with the plugin imports its entry point: it must not load the
    protocol's models (pydantic) or the steps' modules."""
    probe = "import sys, pytest_predeploy.plugin; print(sorted(m for m in sys.modules if m == 'pydantic' or m.startswith(('pytest_predeploy.rehearsal', 'pytest_predeploy.config'))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout


#: The protocol's steps reach staging only through the Target protocol (targets.base, targets.choose),
#: so a new staging target is added without touching them.
STEPS = (
    "pytest_predeploy.intake",
    "pytest_predeploy.rehearsal",
    "pytest_predeploy.rollback",
    "pytest_predeploy.security",
    "pytest_predeploy.readiness",
    "pytest_predeploy.harness",
)
TARGET_IMPLEMENTATIONS = ("pytest_predeploy.targets.local", "pytest_predeploy.targets.kube")


def test_steps_reach_staging_through_the_target_protocol() -> None:
    wrong = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: {name} imports {target}"
        for name, targets in graph().items()
        if name.startswith(STEPS)
        for target, line in targets.items()
        if target.startswith(TARGET_IMPLEMENTATIONS)
    ]
    assert not wrong, "use pytest_predeploy.targets.base.Target (ctx.target or targets.choose.target_for):\n" + "\n".join(wrong)


#: A class past this many lines carries more than one concern (issue 31): split it the way
#: pytest registers one small plugin per concern.
MAX_CLASS_LINES = 220


def test_no_class_is_longer_than_the_limit() -> None:
    long = [
        f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in MODULES.values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert not long, f"classes over {MAX_CLASS_LINES} lines: " + "; ".join(sorted(long))


#: The one module that starts subprocesses (a process group, a deadline, stopped whole: issue 31),
#: and the service log launcher, which is run as a file and must stay standard library only.
PROCESS_STARTERS = {"pytest_predeploy.core.commands", "pytest_predeploy.targets.logcap"}
#: Calls that start a process, by the module they belong to.
STARTS_A_PROCESS = {
    "subprocess": {"Popen", "run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"},
    "os": {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "spawnv", "spawnve", "spawnl", "spawnle", "spawnvp", "spawnlp"}
    | {"execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
}


def process_starts(source: str) -> Iterator[tuple[str, int]]:
    """Each call in ``source`` that starts a process (``subprocess.run(...)``, ``os.fork()``, also
    under an alias or imported by name), with its line."""
    tree = ast.parse(source)
    aliases = {module: module for module in STARTS_A_PROCESS}
    named: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname: alias.name for alias in node.names if alias.asname and alias.name in STARTS_A_PROCESS})
        elif isinstance(node, ast.ImportFrom) and node.module in STARTS_A_PROCESS:
            named.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names if alias.name in STARTS_A_PROCESS[node.module]})
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in aliases:
            module = aliases[func.value.id]
            if func.attr in STARTS_A_PROCESS[module]:
                yield f"{module}.{func.attr}", node.lineno
        elif isinstance(func, ast.Name) and func.id in named:
            yield named[func.id], node.lineno


def test_process_starts_are_found_however_they_are_written() -> None:
    source = "import subprocess\nimport os as o\nfrom subprocess import Popen as P\nsubprocess.run(['x'])\no.fork()\nP(['x'])\nsubprocess.PIPE\n"
    assert list(process_starts(source)) == [("subprocess.run", 4), ("os.fork", 5), ("subprocess.Popen", 6)]


def test_subprocesses_start_only_in_the_one_primitive() -> None:
    """Every command the package runs goes through core/commands.py (steps, services, git, pip,
    podman, the scanners), so none can skip its process group, its deadline or its stopping."""
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {call}"
        for name, path in MODULES.items()
        if name not in PROCESS_STARTERS
        for call, line in process_starts(path.read_text(encoding="utf-8"))
    ]
    assert not found, "start processes with pytest_predeploy.core.commands (start, run, running):\n" + "\n".join(found)
