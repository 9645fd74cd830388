"""Every file the tool parses is held to a size and a nesting limit, and the parity step's cost is
bounded per input byte (issue 30, items 9 and 10: the parts the first round left open).

The hostile inputs are generated here at test time (a 100,000-deep JSON is 200 KB of brackets);
the big-input memory figures belong to ``bench/memory.py --parity-mb``, not to these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.core.artifacts import MANIFEST, MAX_ARTIFACT_BYTES, read_artifact
from pytest_predeploy.core.errors import ArtifactError, ConfigError
from pytest_predeploy.core.redact import Redactor
from pytest_predeploy.intake.filesecrets import config_file_secrets
from pytest_predeploy.intake.parity import ParityConfig, ParityReport, parity_problems, yamlread
from pytest_predeploy.intake.parity.config import EnvironmentConfig
from pytest_predeploy.intake.parity.inputs import load_input_file
from pytest_predeploy.intake.parity.yamlread import load_documents
from pytest_predeploy.readiness.package import _read_manifest
from pytest_predeploy.rehearsal.smoke import _read_report
from pytest_predeploy.security.osv import MAX_RECORD_BYTES, DatabaseUnavailable, load_database, source_record_path
from pytest_predeploy.targets.probe import _answer
from pytest_predeploy.tooling.detect import _project_script
from pytest_predeploy.verdict.criteria import judge_evidence, sealed_criteria
from tests.project import base_config
from tests.test_hostile_input import BOMB

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
DEEP = 100_000
BOMB_LINES = BOMB.splitlines()

#: (format, text, line the nesting passes 64 levels on)
DEEP_INPUTS = [
    ("json", '{"name": "shop",\n "a": ' + "[" * DEEP + "]" * DEEP + "}\n", 2),
    (
        "json",
        '{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",\n\n "b": ' + '{"k": ' * DEEP + "1" + "}" * DEEP + "}\n",
        3,
    ),
    ("toml", 'name = "shop"\n# [[[[ a comment\na = ' + "[" * DEEP + "]" * DEEP + "\n", 3),
    ("toml", 'name = "shop"\npi = 3.14\n' + "a." * DEEP + "b = 1\n", 3),
    ("toml", 'name = "shop"\n\n[' + ".".join(f'"k{i}"' for i in range(1000)) + "]\nc = 1\n", 3),
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

#: The high-water mark of the child's own memory (ru_maxrss would start at the forking pytest's).
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024"

RATIO_CHILD = f"""
from pathlib import Path
from pytest_predeploy.config import load_config
from pytest_predeploy.intake.parity import compare_environments
from pytest_predeploy.intake.parity.inputs import load_environment
config = load_config(Path("predeploy.yaml"))
load_environment(config, "staging"), load_environment(config, "production")  # the parse's own peak
before = {PEAK}
report = compare_environments(config, "staging", "production", "v1")
print({PEAK} - before, report.summary.major, len(report.items))
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


@pytest.mark.parametrize("cut", [{"max_report_bytes": "1KB"}, {"max_report_items": 1}])
def test_blocking_drift_the_report_cannot_list_still_fails_the_gate(tmp_path: Path, cut: dict[str, Any]) -> None:
    # Critical drift in 3 keys and a report too small to list them all: the parity step exits 1,
    # and the gate's reasons (parity_problems, what the declared judge uses) name the ones left out.
    (tmp_path / "staging.yaml").write_text("".join(f"engine{i}: mysql\n" for i in range(3)))
    (tmp_path / "production.yaml").write_text("".join(f"engine{i}: postgres\n" for i in range(3)))
    parity = {**cut, "rules": [{"path": "configuration.engine*", "severity": "critical"}]}
    config = base_config(environments={"staging": {"configuration": ["staging.yaml"]}, "production": {"configuration": ["production.yaml"]}}, parity=parity)
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = _run_parity_script(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = ParityReport.model_validate_json((tmp_path / "out" / "report.json").read_text())
    assert report.summary.blocking == 3 and len(report.items) < 3
    problems = parity_problems(report)
    assert problems[-1].startswith(f"{3 - len(report.items)} more blocking item(s) not listed in the report"), problems


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


# -- item 3: the advisory database is held to the same limits -----------------------------------

FLASK_ADVISORY = {
    "id": "PYSEC-2099-1",
    "modified": "2026-11-01T00:00:00Z",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"}, "versions": ["2.0.0"]}],
}


def _advisory_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PYSEC-2099-0.json", json.dumps(FLASK_ADVISORY | {"id": "PYSEC-2099-0"}))
        for name, text in members.items():
            archive.writestr(name, text)
    return path


HOSTILE_ADVISORIES = {
    "deep JSON": (
        "PYSEC-2099-2.json",
        '{"id": "PYSEC-2099-2",\n"affected": [{"package": {"name": "flask"}}],\n"x": ' + "[" * DEEP + "]" * DEEP + "}",
        "nesting deeper than 64 levels",
    ),
    "alias bomb": (
        "PYSEC-2099-3.yaml",
        "id: PYSEC-2099-3\naffected: [{package: {name: flask}}]\n" + "".join(line.replace("lol", "2.0.0") + "\n" for line in BOMB_LINES),
        "aliases expand to more than 100,000 values",
    ),
    "deep YAML": (
        "PYSEC-2099-4.yaml",
        "id: PYSEC-2099-4\naffected: [{package: {name: flask}}]\nx: " + "[" * 900 + "]" * 900 + "\n",
        "nesting deeper than 64 levels",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_ADVISORIES))
@pytest.mark.parametrize("layout", ["zip", "folder"])
def test_a_hostile_advisory_makes_the_database_unavailable_naming_it(tmp_path: Path, case: str, layout: str) -> None:
    name, text, expected = HOSTILE_ADVISORIES[case]
    if layout == "zip":
        database = _advisory_zip(tmp_path / "osv.zip", {name: text})
    else:
        database = tmp_path / "osv"
        database.mkdir()
        (database / "PYSEC-2099-0.json").write_text(json.dumps(FLASK_ADVISORY))
        (database / name).write_text(text)
    with pytest.raises(DatabaseUnavailable) as error, _shallow_stack():
        load_database(database, ["flask"])
    assert name in str(error.value) and expected in str(error.value), str(error.value)


def test_an_oversized_advisory_file_in_a_folder_is_refused_unread(tmp_path: Path) -> None:
    database = tmp_path / "osv"
    database.mkdir()
    (database / "PYSEC-2099-0.json").write_text(json.dumps(FLASK_ADVISORY))
    with open(database / "PYSEC-2099-5.json", "wb") as huge:
        huge.truncate(MAX_RECORD_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(DatabaseUnavailable, match=r"PYSEC-2099-5.json is larger than 8 MiB"):
        load_database(database, ["flask"])


def test_a_zip_that_unpacks_to_more_than_the_database_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_predeploy.security.osv as osv

    monkeypatch.setattr(osv, "MAX_DATABASE_BYTES", 1_000_000)  # 1 GiB of zeros takes seconds to write
    database = _advisory_zip(tmp_path / "osv.zip", {f"PYSEC-2099-{i}.json": json.dumps(FLASK_ADVISORY) + " " * 300_000 for i in range(10, 14)})
    with pytest.raises(DatabaseUnavailable, match=r"osv.zip: its advisories unpack to more than 1000000 bytes"):
        load_database(database, ["flask"])


def test_a_deep_source_record_makes_the_database_unavailable(tmp_path: Path) -> None:
    database = _advisory_zip(tmp_path / "osv.zip", {})
    source_record_path(database).write_text('{"fetched_at": "2026-12-01T00:00:00Z",\n"x": ' + "[" * DEEP + "]" * DEEP + "}")
    with pytest.raises(DatabaseUnavailable, match=r"osv.zip.source.json:2: nesting deeper than 64 levels"), _shallow_stack():
        load_database(database, ["flask"])


# -- item 3: reports the scripts write are read back within limits -------------------------------

DEEP_REPORT = '{"release": "v1.0",\n"items": ' + "[" * DEEP + "]" * DEEP + "}\n"


def test_a_deep_step_report_is_an_artifact_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "staging-parity-report.json"
    path.write_text(DEEP_REPORT)
    with pytest.raises(ArtifactError) as error, _shallow_stack():
        read_artifact(path, ParityReport)
    assert str(error.value) == f"{path}: not valid JSON (nesting deeper than 64 levels: line 2 column 1 (char 20))"


def test_an_oversized_step_report_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "security-compliance-report.json"
    with open(path, "wb") as huge:
        huge.truncate(MAX_ARTIFACT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ArtifactError) as error:
        read_artifact(path, ParityReport)
    assert str(error.value) == f"{path}: larger than 64MiB: a report is read in full, so a bigger one is refused; check what the step wrote"


def test_deep_evidence_in_a_package_is_a_reason_not_a_traceback() -> None:
    criterion = sealed_criteria()[0]
    with _shallow_stack():
        problems = judge_evidence(criterion, DEEP_REPORT.encode(), cast(ProjectConfig, None), "in the package")
    assert problems == [f"{criterion.artifact} in the package: not valid JSON (nesting deeper than 64 levels: line 2 column 1 (char 20))"]


def test_a_deep_smoke_report_fails_the_suite_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(DEEP_REPORT)
    with _shallow_stack():
        assert _read_report(path) is None


# -- item 9: parity's YAML reader builds values from events, as the safe loader would ------------

SAME_AS_SAFE_LOADER = [
    "a: 1\nb: 2.5\nc: yes\nd: ~\ne: 2026-01-02\nf: 2026-01-02T03:04:05Z\ng: '012'\nh: 0o17\ni: 0x1F\nj: 1_000\nk: .inf\nl: !!str 12\nm: !!binary aGk=\n",
    "base: &base {cpu: 1, memory: 2}\nsmall: {<<: *base, cpu: 3}\nlist: &l [1, 2]\nagain: *l\n",
    "a: &a {x: 1, y: 2}\nb: &b {y: 3, z: 4}\nc:\n  <<: [*a, *b]\n  w: 0\nd:\n  <<: *a\n  <<: *b\n",
    "- &x name\n- *x\n- {*x : 1}\n- [[[]], {}]\n- ''\n- !!null ''\n- 1e3\n- +12\n- -0.5\n- off\n",
    "---\na: 1\n---\n---\n- 2\n...\n--- 3\n",
    "'quoted key': |\n  block\n  text\nfolded: >\n  one\n  two\n",
]


@pytest.mark.parametrize("text", SAME_AS_SAFE_LOADER)
def test_parity_yaml_reads_as_the_safe_loader_reads(text: str) -> None:
    expected = [document for document in yaml.load_all(text, Loader=yaml.CSafeLoader) if document is not None]
    assert [value for _, value in load_documents(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "3: duplicate key 'a' (first defined on line 1)"),
        ("a: &a [1, *a]\n", "1: an alias that contains itself"),
        ("a: *nowhere\n", "1: an alias to an anchor that is not defined before it"),
        ("a: &x 1\nb: &x 2\n", "2: anchor &x is defined twice (first on line 1)"),
        ("a: !!set {x: 1}\n", "1: unsupported tag tag:yaml.org,2002:set"),
        ("a: !custom 1\n", "1: a value that cannot be read as !custom"),
        ("a: 2026-02-30\n", "1: a value that cannot be read as timestamp"),
        ("x:\n  <<: 3\n", "2: a merge key (<<) whose value is not a mapping or a list of mappings"),
        ("[1]: 2\n", "1: a mapping key that is a list or mapping"),
        ("a: &a [" + "[" * 30 + "]" * 30 + "]\nb: [" + "[" * 33 + "*a" + "]" * 33 + "]\n", "2: nesting deeper than 64 levels"),
    ],
)
def test_parity_yaml_refuses_what_the_tool_refuses_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_input_file(path)
    assert str(error.value).startswith(f"{path}:{message}"), str(error.value)


YAML_CHILD = f"""
from pathlib import Path
from pytest_predeploy.intake.parity.inputs import load_input_file
before = {PEAK}
tree, _ = load_input_file(Path("baseline.yaml"))
print({PEAK} - before, len(tree))
"""


def test_reading_a_yaml_baseline_costs_a_few_times_its_size(tmp_path: Path) -> None:
    services = {
        f"svc-{s:04d}": {f"setting_{k:02d}": f"value-{s}-{k}" for k in range(40)} | {"hosts": [f"h{i}.example.com" for i in range(4)]} for s in range(2000)
    }
    (tmp_path / "baseline.yaml").write_text(yaml.dump(services, Dumper=yaml.CSafeDumper))
    size = (tmp_path / "baseline.yaml").stat().st_size
    done = subprocess.run([sys.executable, "-c", YAML_CHILD], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grown, services_read = (int(word) for word in done.stdout.split())
    assert services_read == 2000
    # The text and the values take about 7 times the YAML's size; a node per value, held until
    # the whole document was composed, took about 30 times.
    assert grown < 15 * size, f"reading grew the peak by {grown / size:.1f} x the file's size"


# -- item 3: JSON from services, tools and scripts is parsed within the nesting limit ------------


def test_redaction_locates_a_secret_in_a_deep_json_file_by_line() -> None:
    redactor = Redactor({"DB_PASSWORD": "Sup3r-Secret-Value-42"})
    data = ('{"a": "Sup3r-Secret-Value-42",\n"b": ' + "[" * DEEP + "]" * DEEP + "}\n").encode()
    with _shallow_stack():
        places = redactor.locate(data)
    assert places and all("DB_PASSWORD" in place for place in places), places


def test_a_deep_health_answer_is_shown_as_text_not_raised() -> None:
    with _shallow_stack():
        answer = _answer(200, b"[" * DEEP + b"]" * DEEP)
    assert answer.body == "[" * 200


def test_a_deep_pyproject_is_skipped_by_init_detection_not_raised(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nx = ' + "[" * DEEP + "]" * DEEP + "\n")
    with _shallow_stack():
        assert _project_script(tmp_path, {}) is None


def test_a_deep_manifest_in_a_package_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr(MANIFEST, DEEP_REPORT)
    problems: list[str] = []
    with zipfile.ZipFile(package) as archive, _shallow_stack():
        assert _read_manifest(archive, archive.infolist(), problems) == (None, b"")
    assert problems == [f"{MANIFEST}: not valid JSON (nesting deeper than 64 levels: line 2 column 1 (char 20))"]


DENSE: dict[str, Callable[[int], str]] = {
    # Three bytes a value: a file of empty mappings costs some 25 times its size once built.
    "json": lambda count: '{"items": [' + "{}," * count + "{}]}",
    "yaml": lambda count: "items:\n" + "- {}\n" * count,
    "toml": lambda count: "items = [" + "{}," * count + "{}]\n",
    "env": lambda count: "".join(f"K{n}=\n" for n in range(count // 2)),
}


@pytest.mark.parametrize("fmt", sorted(DENSE))
def test_an_input_denser_in_values_than_configuration_is_refused_naming_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    # The floor is 1,000,000 values (a 6 MB file of them); lowered here so the files stay small.
    monkeypatch.setattr(yamlread, "VALUES_FLOOR", 1_000)
    dense = tmp_path / f"dense.{fmt}"
    dense.write_text(DENSE[fmt](3_000))
    with pytest.raises(ConfigError) as refused:
        load_input_file(dense)
    assert f"values in {dense.stat().st_size:,} bytes (at most one per 6 bytes" in str(refused.value)
    assert "parity inputs are configuration, not data" in str(refused.value)
    # Configuration-shaped inputs of the same size and more are read: a setting every 10-20 bytes.
    settings = tmp_path / f"settings.{fmt}"
    services = {f"service-{n}": {"replicas": n, "image": f"registry.example/app:{n}"} for n in range(1_000)}
    written = {
        "json": json.dumps({"services": services}),
        "yaml": yaml.safe_dump({"services": services}),
        "toml": "".join(f'[services.service-{n}]\nreplicas = {n}\nimage = "registry.example/app:{n}"\n' for n in range(1_000)),
        "env": "".join(f"SERVICE_{n}_IMAGE=registry.example/app:{n}\n" for n in range(1_000)),
    }
    settings.write_text(written[fmt])
    assert settings.stat().st_size > dense.stat().st_size
    assert len(load_input_file(settings)[0]) in (1, 1_000)  # one table of services, or a name per line


def test_aliases_do_not_count_as_built_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # An alias is the same object again, not a new one: only the expansion budget counts it.
    monkeypatch.setattr(yamlread, "VALUES_FLOOR", 100)
    text = "base: &b {a: 1, b: 2}\n" + "".join(f"k{n}: *b\n" for n in range(60))
    assert len(load_documents(text)[0][1]) == 61
