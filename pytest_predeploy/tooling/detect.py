"""What ``predeploy init`` can tell about a service from its source folder, without running it.

The start command comes from, in order: a ``Procfile`` (its ``web`` process, else the one named
like the service, else the only one), a ``__main__`` module (``__main__.py`` in the folder, a
package's ``__main__.py``, or one top-level script guarded by ``if __name__ == "__main__"``),
or a ``[project.scripts]`` entry of the folder's ``pyproject.toml``. How the port reaches the
process is read from that code: a ``--port`` option, a ``$PORT`` in the Procfile or a ``PORT``
environment variable. The health path is the first well-known one (``/healthz``, ``/health``,
...) the service's Python source mentions, and an OpenAPI document is a file in the folder or a
path the source serves.

Everything found says where it came from; everything not found is a ``todo`` sentence that
init writes as a comment beside a placeholder, so nothing is guessed silently.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pytest_predeploy.core.nesting import nesting_line

#: Health paths services commonly answer, most specific first.
HEALTH_PATHS = ("/healthz", "/health", "/readyz", "/ready", "/livez", "/_health", "/ping", "/status")
#: OpenAPI documents as services serve them (frameworks' defaults first).
OPENAPI_PATHS = ("/openapi.json", "/openapi.yaml", "/swagger.json", "/api-docs", "/v3/api-docs")
#: OpenAPI documents as files in a repository.
OPENAPI_FILES = ("openapi.yaml", "openapi.yml", "openapi.json", "swagger.yaml", "swagger.yml", "swagger.json")
#: Folders that hold no service code of the folder's own.
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "tests", "test", ".tox", "build", "dist"})
#: Scanning stays quick on any folder: init runs it on whatever the user points at.
MAX_FILES = 300
MAX_FILE_BYTES = 256 * 1024

_MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""", re.MULTILINE)
_SHELL = re.compile(r"[;&|<>`]|\$\(|^\s*\w+=")
_PORT_VAR = re.compile(r"\$\{?PORT\}?")
_PORT_ENV = re.compile(r"""environ(?:\.get\(|\[)\s*['"]PORT['"]|getenv\(\s*['"]PORT['"]""")


@dataclass
class Detection:
    """What was found about one service; ``found`` and ``todo`` are sentences for the user."""

    command: str | None = None
    health_path: str | None = None
    openapi: str | None = None  # a file relative to the source folder, or a path the service serves
    env: dict[str, str] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def python_sources(source: Path) -> dict[Path, str]:
    """The folder's own Python files (relative path -> text), bounded in number and size."""
    found: dict[Path, str] = {}
    stack = [source]
    while stack and len(found) < MAX_FILES:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in SKIP_DIRS and not entry.name.startswith("."):
                    stack.append(entry)
            elif entry.suffix == ".py" and len(found) < MAX_FILES:
                text = _read(entry)
                if text is not None:
                    found[entry.relative_to(source)] = text
    return found


def _procfile(source: Path, name: str) -> tuple[str, str] | None:
    """(process name, command) of the Procfile's web process, else the service's, else the only one."""
    text = _read(source / "Procfile")
    if text is None:
        return None
    processes: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+)\s*:\s*(.+)$", line.strip())
        if match:
            processes[match.group(1)] = match.group(2).strip()
    for key in ("web", name):
        if key in processes:
            return key, processes[key]
    if len(processes) == 1:
        return next(iter(processes.items()))
    return None


def _template_of_shell(line: str) -> str:
    """A Procfile line as a command template: ``$PORT`` becomes ``{port}``, a leading ``python``
    the test run's interpreter, and a line that needs a shell runs under ``sh -c``."""
    line = _PORT_VAR.sub("{port}", line)
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = []
    if words and not _SHELL.search(shlex.join(words)):
        if re.fullmatch(r"python(3(\.\d+)?)?", words[0]):
            words[0] = "{python}"
        return " ".join(word if word in ("{python}",) or re.fullmatch(r"[\w@%+=:,./{}-]+", word) else shlex.quote(word) for word in words)
    return "sh -c " + shlex.quote(line)


def _port_arguments(code: str) -> tuple[str, dict[str, str]]:
    """How the code takes its port: command-line arguments to append and environment to set."""
    args = ""
    env: dict[str, str] = {}
    if re.search(r"""['"]--port['"]""", code):
        args += " --port {port}"
        if re.search(r"""['"]--port-file['"]""", code):
            args += " --port-file {port_file}"
    elif _PORT_ENV.search(code):
        env["PORT"] = "{port}"
    return args, env


def _main_module(source: Path, sources: dict[Path, str]) -> tuple[str, Path] | None:
    """(command, file) of the folder's ``__main__`` module, when there is exactly one candidate."""
    if Path("__main__.py") in sources:
        return "{python} .", Path("__main__.py")
    packages = sorted(p for p in sources if p.name == "__main__.py" and len(p.parts) == 2 and p.parts[0] != "src")
    src_packages = sorted(p for p in sources if p.name == "__main__.py" and len(p.parts) == 3 and p.parts[0] == "src")
    if len(packages) + len(src_packages) > 1:
        return None  # which one is the service is the user's call
    if packages:
        return f"{{python}} -m {packages[0].parts[0]}", packages[0]
    if src_packages:
        package = src_packages[0].parts[1]
        return f"{{python}} -c \"import runpy, sys; sys.path.insert(0, 'src'); runpy.run_module('{package}', run_name='__main__')\"", src_packages[0]
    scripts = sorted(p for p, text in sources.items() if len(p.parts) == 1 and _MAIN_GUARD.search(text))
    if len(scripts) == 1:
        return f"{{python}} {scripts[0].name}", scripts[0]
    return None


def _project_script(source: Path, sources: dict[Path, str]) -> tuple[str, Path | None, str] | None:
    """(command, module file, entry name) of the only ``[project.scripts]`` entry."""
    text = _read(source / "pyproject.toml")
    if text is None or nesting_line(text, "toml") is not None:  # too deep for tomllib to recurse into
        return None
    try:
        scripts = tomllib.loads(text).get("project", {}).get("scripts", {})
    except tomllib.TOMLDecodeError:
        return None
    if not isinstance(scripts, dict) or len(scripts) != 1:
        return None
    entry_name, target = next(iter(scripts.items()))
    match = re.fullmatch(r"\s*([\w.]+)\s*:\s*([\w.]+)\s*", str(target))
    if not match:
        return None
    module, function = match.groups()
    relative = Path(*module.split("."))
    file = next(
        (
            p
            for p in (relative.with_suffix(".py"), relative / "__init__.py", Path("src") / relative.with_suffix(".py"), Path("src") / relative / "__init__.py")
            if p in sources
        ),
        None,
    )
    path_setup = "sys.path.insert(0, 'src'); " if file is not None and file.parts[0] == "src" else ""
    owner, _, attribute = function.partition(".")
    call = f"{owner}.{attribute}()" if attribute else f"{owner}()"
    command = f'{{python}} -c "import sys; {path_setup}from {module} import {owner}; sys.exit({call})"'
    return command, file, str(entry_name)


def detect_service(source: Path, name: str) -> Detection:
    """Everything init can tell about the service in ``source`` (see the module documentation)."""
    result = Detection()
    sources = python_sources(source)
    code_of_entry: str | None = None

    procfile = _procfile(source, name)
    main = _main_module(source, sources) if procfile is None else None
    script = _project_script(source, sources) if procfile is None and main is None else None
    if procfile is not None:
        process, line = procfile
        result.command = _template_of_shell(line)
        result.found.append(f"start command from Procfile ({process}: ...)")
        if "{port}" not in result.command:
            code_of_entry = "\n".join(sources.values())
    elif main is not None:
        result.command, file = main
        code_of_entry = sources[file]
        result.found.append(f"start command from the __main__ module {file}")
    elif script is not None:
        result.command, module_file, entry = script
        code_of_entry = sources[module_file] if module_file is not None else "\n".join(sources.values())
        result.found.append(f"start command from [project.scripts] {entry} in pyproject.toml")
    else:
        result.todo.append(
            "set `command`: how the service starts in its folder (no Procfile, __main__ module or single [project.scripts] entry found); pass the port as {port}"
        )

    if result.command is not None and code_of_entry is not None:
        args, env = _port_arguments(code_of_entry)
        if args or env:
            result.command += args
            result.env.update(env)
            result.found.append("port passed as " + ("--port {port}" if args else "PORT={port} in the environment"))
        elif "{port}" not in result.command:
            result.todo.append("pass the port to `command` as {port} (the service's code shows neither a --port option nor a PORT variable)")

    everything = "\n".join(sources.values())
    result.health_path = next((path for path in HEALTH_PATHS if re.search(rf"""['"]{re.escape(path)}/?['"]""", everything)), None)
    if result.health_path is not None:
        result.found.append(f"health path {result.health_path} (mentioned in the source)")
    else:
        result.todo.append("set `health_path`: a path answering 200 once the service is ready (none of " + ", ".join(HEALTH_PATHS) + " appears in the source)")

    candidates = [name for name in OPENAPI_FILES] + [f"docs/{name}" for name in OPENAPI_FILES]
    document = next((f for f in candidates if (source / f).is_file()), None)
    if document is not None:
        result.openapi = str(document)
        result.found.append(f"OpenAPI document {document}")
    else:
        served = next((path for path in OPENAPI_PATHS if re.search(rf"""['"]{re.escape(path)}['"]""", everything)), None)
        if served is not None:
            result.openapi = served
            result.found.append(f"OpenAPI document served at {served}")
    return result


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar (commands hold ':' and '#', which plain scalars cannot)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def service_block(name: str, source: str | None, found: Detection, wheels: bool = False) -> str:
    """The ``services:`` entry init writes: detected values with where they came from, and a
    ``# SET ME`` placeholder with the reason for each value that was not found. ``wheels``: the
    service is released as wheels in dist/ (no source folder is needed to deploy it)."""
    lines = [f"  - name: {name}"]
    if source is None and wheels:
        lines.append("    source: null                # released as wheels (dist/): each release is installed, not copied")
    elif source is not None:
        lines.append(f"    source: {source}           # the folder each staging release copies")
    else:
        lines.append("    source: null                # SET ME: the folder holding this service's code (each staging release copies it)")
    origin = next((f for f in found.found if f.startswith("start command")), "")
    if found.command is not None:
        lines.append(f"    command: {_yaml_string(found.command)}   # {origin}")
    else:
        lines.append('    command: "{python} server.py --port {port}"   # SET ME: how the service starts; pass the port as {port}')
    if found.env:
        lines.append("    env:                        # how the service learns its port")
        lines.extend(f"      {key}: {_yaml_string(value)}" for key, value in found.env.items())
    lines.append("    port: 0                     # 0: a free port, passed as {port}")
    lines.append("    strategy: restart           # or blue_green: start in the idle slot, rollback is the switchback")
    if found.health_path is not None:
        lines.append(f"    health_path: {found.health_path}         # mentioned in the service's code; polled until it answers 200")
    else:
        lines.append("    health_path: /healthz       # SET ME: a path answering 200 once the service is ready")
    lines.append("    health_timeout: 30s")
    lines.append("    endpoints:                  # declared endpoints for smoke coverage (docs/adopting.md)")
    if found.openapi is not None:
        # A file is named relative to the configuration, like every other path in it.
        where = found.openapi if found.openapi.startswith("/") or source is None else f"{source.rstrip('/')}/{found.openapi}"
        lines.append(f"      openapi: {where}   # found in the service")
    else:
        lines.append(
            "      routes: []                # SET ME unless the service lists them at /routes: `openapi:` (a served path or a file), or 'GET /path' lines here"
        )
    return "\n".join(lines) + "\n"
