"""Every file the tool parses is held to a size and a nesting limit, and the parity step's cost is
bounded per input byte (issue 30, items 9 and 10: the parts the first round left open).

The hostile inputs are generated here at test time (a 100,000-deep JSON is 200 KB of brackets);
the big-input memory figures belong to ``bench/memory.py --parity-mb``, not to these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.intake.filesecrets import config_file_secrets
from pytest_predeploy.intake.parity import ParityConfig
from pytest_predeploy.intake.parity.config import EnvironmentConfig
from pytest_predeploy.intake.parity.inputs import load_input_file
from tests.project import base_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
DEEP = 100_000

#: (format, text, line the nesting passes 64 levels on)
DEEP_INPUTS = [
    ("json", '{"name": "shop",\n "a": ' + "[" * DEEP + "]" * DEEP + "}\n", 2),
    (
        "json",
        '{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",\n\n "b": ' + '{"k": ' * DEEP + "1" + "}" * DEEP + "}\n",
        3,
    ),
    ("toml", 'name = "shop"\n# [[[[ a comment\na = ' + "[" * DEEP + "]" * DEEP + "\n", 3),
    ("toml", 'name = """\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"""\nb = ' + "{c = " * DEEP + "1" + "}" * DEEP + "\n", 4),
]


@contextmanager
def _shallow_stack(frames: int = 150) -> Iterator[None]:
    """Fail with RecursionError anything that recurses more than ``frames`` levels below here:
    a limit checked up front needs no recursion at all."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _run_parity_script(root: Path) -> subprocess.CompletedProcess[str]:
    """The real parity step: the shipped script, writing out/report.json."""
    argv = [sys.executable, str(SCRIPTS / "compare_environments.py"), "--config", "predeploy.yaml", "--output", "out/report.json"]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=120)


# -- item 2: JSON and TOML nested deeper than 64 levels are refused up front ---------------------


@pytest.mark.parametrize(("fmt", "text", "line"), DEEP_INPUTS)
def test_a_deep_json_or_toml_baseline_is_refused_up_front_naming_its_line(tmp_path: Path, fmt: str, text: str, line: int) -> None:
    path = tmp_path / f"baseline.{fmt}"
    path.write_text(text)
    with pytest.raises(ConfigError) as error, _shallow_stack():
        load_input_file(path)
    assert str(error.value) == f"{path}:{line}: nesting deeper than 64 levels"


@pytest.mark.parametrize(("fmt", "text"), [(fmt, text) for fmt, text, _ in DEEP_INPUTS if fmt == "toml"])
def test_file_secrets_reads_a_deep_file_without_deep_recursion(tmp_path: Path, fmt: str, text: str) -> None:
    path = tmp_path / f"deep.{fmt}"
    path.write_text(text)
    deepest = 0
    depth = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal depth, deepest
        if event == "call":
            depth += 1
            deepest = max(deepest, depth)
        elif event == "return":
            depth -= 1

    env = EnvironmentConfig.model_validate({"configuration": [str(path)]}, context={"base_dir": tmp_path})
    sys.setprofile(profile)
    try:
        found = config_file_secrets("staging", env, ParityConfig())
    finally:
        sys.setprofile(None)
    assert found == {}
    assert deepest < 100


def test_a_deep_json_baseline_fails_the_parity_script_with_one_line(tmp_path: Path) -> None:
    fmt, text, line = DEEP_INPUTS[0]
    (tmp_path / f"staging.{fmt}").write_text(text)
    (tmp_path / f"production.{fmt}").write_text('{"name": "shop"}\n')
    config = base_config(environments={"staging": {"configuration": [f"staging.{fmt}"]}, "production": {"configuration": [f"production.{fmt}"]}})
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = _run_parity_script(tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"staging.{fmt}:{line}: nesting deeper than 64 levels" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- item 9: the parity step's memory and report are bounded per input byte ----------------------

RATIO_CHILD = """
import resource, sys
from pathlib import Path
from pytest_predeploy.config import load_config
from pytest_predeploy.intake.parity import compare_environments
from pytest_predeploy.intake.parity.inputs import load_environment
config = load_config(Path("predeploy.yaml"))
load_environment(config, "staging"), load_environment(config, "production")  # the parse's own peak
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = compare_environments(config, "staging", "production", "v1")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, report.summary.major, len(report.items))
"""


def _every_value_differs(root: Path, services: int, parity: dict[str, Any]) -> int:
    """A JSON pair in which every one of 40 settings of each service differs; the staging size."""
    for name in ("staging", "production"):
        tree = {f"svc{s:04d}": {f"setting_{k:02d}": f"value-{s}-{k}-{name}" for k in range(40)} for s in range(services)}
        (root / f"{name}.json").write_text(json.dumps(tree))
    config = base_config(environments={"staging": {"configuration": ["staging.json"]}, "production": {"configuration": ["production.json"]}}, parity=parity)
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return (root / "staging.json").stat().st_size


def test_comparing_costs_memory_for_the_items_listed_not_for_every_difference(tmp_path: Path) -> None:
    size = _every_value_differs(tmp_path, 1000, {"max_report_items": 100})
    done = subprocess.run([sys.executable, "-c", RATIO_CHILD], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grown, counted, listed = (int(word) for word in done.stdout.split())
    assert (counted, listed) == (40_000, 100), "every difference is counted, the first 100 listed"
    # The trees are parsed before (their peak is not counted): what comparing adds stays within a
    # few times one input's size, not the ~70 times it cost when every item was built and kept.
    assert grown < 8 * size, f"comparing grew the peak by {grown / size:.1f} x the input's size"


def _alias_heavy(root: Path, copies: int, pad: int, parity: dict[str, Any]) -> None:
    """Staging: ``copies`` keys each an alias of one 8,000-value mapping (each shown up to the
    value budget), padded with a comment so the alias budget (one value a byte) allows them."""
    block = "{" + ", ".join(f"k{i:02d}: [" + ", ".join("[" + ", ".join("0" for _ in range(20)) + "]" for _ in range(20)) + "]" for i in range(20)) + "}"
    lines = [f"# {'x' * pad}", f"anchor: &big {block}"] + [f"key{i:04d}: *big" for i in range(copies)]
    (root / "staging.yaml").write_text("\n".join(lines) + "\n")
    (root / "production.yaml").write_text("".join(f"key{i:04d}: 1\n" for i in range(copies)))
    config = base_config(environments={"staging": {"configuration": ["staging.yaml"]}, "production": {"configuration": ["production.yaml"]}}, parity=parity)
    (root / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_the_report_is_cut_at_max_report_bytes_with_a_note_saying_what_was_left_out(tmp_path: Path) -> None:
    _alias_heavy(tmp_path, 60, 600_000, {"max_report_bytes": "200KB"})
    done = _run_parity_script(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = tmp_path / "out" / "report.json"
    assert report.stat().st_size <= 200_000
    data = json.loads(report.read_text())
    assert data["summary"]["major"] == 61, "every item is counted (60 type changes and the added anchor)"
    assert 0 < len(data["items"]) < 61
    [note] = [note for note in data["notes"] if "parity.max_report_bytes" in note]
    assert note.startswith(f"... {61 - len(data['items'])} more items not listed (")
    assert f"note: {note}" in done.stdout


# -- item 4: environment variable names are checked where they are configured -------------------

ENV_NAME_CASES: dict[str, tuple[list[Any], dict[str, Any], str]] = {
    "secret source, empty": (["environments", "staging", "secrets"], {"env_vars": ["DB_PASSWORD", ""]}, "environments.staging.secrets.env_vars"),
    "secret source, '='": (["environments", "staging", "secrets"], {"env_vars": ["DB=PASSWORD"]}, "environments.staging.secrets.env_vars"),
    "secret source, NUL": (["environments", "production", "secrets"], {"env_vars": ["DB\0PASSWORD"]}, "environments.production.secrets.env_vars"),
    "redact, '='": (["redact"], {"env_vars": ["CI=TOKEN"]}, "redact.env_vars"),
    "step env, '='": (["steps", "parity"], {"command": "{python} parity.py {output}", "env": {"A=B": "1"}}, "steps.parity.env"),
    "step env, empty": (["steps", "parity"], {"command": "{python} parity.py {output}", "env": {"": "1"}}, "steps.parity.env"),
    "step env, NUL in a value": (["steps", "parity"], {"command": "{python} parity.py {output}", "env": {"MODE": "a\0b"}}, "steps.parity.env"),
    "service env, NUL": (["services", 0], {"name": "api", "env": {"PO\0RT": "1"}}, "services.0.env"),
}


@pytest.mark.parametrize("case", list(ENV_NAME_CASES))
def test_an_environment_variable_name_that_cannot_exist_is_refused_at_load_naming_the_field(tmp_path: Path, case: str) -> None:
    where, value, field = ENV_NAME_CASES[case]
    config = base_config()
    node: Any = config
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    path = tmp_path / "predeploy.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML, and keeps the NUL as an escape
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}:") and f" {field}" in message, message
    assert "environment variable" in message and "\n" not in message, message
