"""The security and compliance audit: real scanners, real files, real subprocesses."""

from __future__ import annotations

import hashlib
import http.server
import json
import secrets
import socket
import string
import subprocess
import sys
import textwrap
import threading
import zipfile
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import ProjectConfig
from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.security import SecurityReport, licenses, osv, security_problems
from pytest_predeploy.security.components import resolve_dependencies
from tests.security_project import audit, make_config, only, scanner, site_packages

ROOT = Path(__file__).parents[1]
#: The PyPA advisory database snapshot the package ships (2024-10-10), as osv.dev's zip of OSV JSON.
PYPA_DB = osv.BUNDLED_ZIP

# -- offline OSV against the real PyPA database ---------------------------------------------


@pytest.mark.parametrize("target", ["site-packages", "requirements"])
def test_pypa_db_reports_requests_2_19_1_with_its_fixed_version(tmp_path: Path, target: str) -> None:
    if target == "site-packages":
        where: dict[str, Any] = {"environment": str(site_packages(tmp_path, {"requests": ("2.19.1", [])}))}
    else:
        (tmp_path / "requirements.txt").write_text("requests==2.19.1 --hash=sha256:0000\n")
        where = {"requirements": ["requirements.txt"]}
    config = make_config(tmp_path, {**where, **only("osv"), "osv": {"database": str(PYPA_DB), "max_age": "none"}})
    report = audit(config, tmp_path)
    found = {f.id: f for f in report.findings}
    assert "PYSEC-2018-28" in found
    finding = found["PYSEC-2018-28"]
    assert (finding.package, finding.version, finding.fixed_versions) == ("requests", "2.19.1", ["2.20.0"])
    assert "CVE-2018-18074" in finding.aliases
    assert finding.blocking and report.blocking
    assert any("PYSEC-2018-28 in requests 2.19.1" in line and "fixed in 2.20.0" in line for line in security_problems(report))
    assert report.osv_database is not None and report.osv_database.newest_modified is not None
    assert report.osv_database.newest_modified.date().isoformat() == "2024-10-10"


def test_pypa_db_reports_nothing_for_a_fixed_requests(tmp_path: Path) -> None:
    env = site_packages(tmp_path, {"requests": ("2.32.3", [])})
    config = make_config(tmp_path, {"environment": str(env), **only("osv"), "osv": {"database": str(PYPA_DB), "max_age": "none"}})
    report = audit(config, tmp_path)
    assert scanner(report, "osv").status == "passed"
    assert report.findings == [] and not report.blocking
    written = json.loads((tmp_path / "out" / "security-compliance-report.json").read_text())
    assert written["osv_database"]["advisories"] > 2000


# -- OSV version semantics ------------------------------------------------------------------


def ranged(*events: dict[str, str], versions: list[str] | None = None) -> dict[str, Any]:
    return {"package": {"ecosystem": "PyPI", "name": "demo-lib"}, "ranges": [{"type": "ECOSYSTEM", "events": list(events)}], "versions": versions or []}


@pytest.mark.parametrize(
    ("affected", "version", "expected"),
    [
        (ranged({"introduced": "0"}, {"fixed": "1.5"}), "1.4.9", ["1.5"]),
        (ranged({"introduced": "0"}, {"fixed": "1.5"}), "1.5", None),
        (ranged({"introduced": "1.2"}, {"fixed": "1.5"}), "1.1", None),
        (ranged({"introduced": "1.2"}, {"fixed": "1.5"}), "1.2", ["1.5"]),
        (ranged({"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}), "1.7", None),
        (ranged({"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}), "2.1", ["2.3"]),
        (ranged({"introduced": "0"}, {"last_affected": "3.0"}), "3.0", []),
        (ranged({"introduced": "0"}, {"last_affected": "3.0"}), "3.0.post1", None),
        (ranged({"introduced": "1.0"}, {"limit": "2.0"}), "1.9", []),
        (ranged({"introduced": "1.0"}, {"limit": "2.0"}), "2.0", None),
        (ranged({"introduced": "1.0"}, {"limit": "*"}), "9.0", []),
        (ranged({"introduced": "0"}, {"fixed": "1.0"}), "1.0rc1", ["1.0"]),  # a pre-release sorts before its release
        (ranged(versions=["0.12.01", "0.13"]), "0.12.1", []),  # explicit versions compare as PEP 440 versions
        (ranged(versions=["0.12.01", "0.13"]), "0.14", None),
    ],
)
def test_osv_events_follow_the_schema_evaluation(affected: dict[str, Any], version: str, expected: list[str] | None) -> None:
    assert osv.affected_fixes(version, affected) == expected


def advisory(vid: str, *affected: dict[str, Any], modified: str = "2026-11-20T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"id": vid, "modified": modified, "summary": f"{vid} summary", "affected": list(affected), **extra}


@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_withdrawn_advisories_are_ignored_and_json_and_yaml_both_read(tmp_path: Path, packed: str) -> None:
    records = {
        "PYSEC-1.json": json.dumps(advisory("PYSEC-1", ranged({"introduced": "0"}, {"fixed": "2.0"}))),
        "PYSEC-2.yaml": yaml.safe_dump(advisory("PYSEC-2", ranged({"introduced": "0"}, {"last_affected": "1.0"}), modified="2026-11-21T10:00:00Z")),
        "PYSEC-3.yaml": yaml.safe_dump(advisory("PYSEC-3", ranged({"introduced": "0"}), withdrawn="2026-01-01T00:00:00Z")),
        "OTHER-1.json": json.dumps(advisory("OTHER-1", {"package": {"ecosystem": "npm", "name": "demo-lib"}, "versions": ["1.0"]})),
    }
    db = tmp_path / "db"
    if packed == "folder":
        db.mkdir()
        for name, text in records.items():
            (db / name).write_text(text)
    else:
        db = tmp_path / "db.zip"
        with zipfile.ZipFile(db, "w") as archive:
            for name, text in records.items():
                archive.writestr(f"osv/{name}", text)
    env = site_packages(tmp_path, {"demo-lib": ("1.0", [])})
    config = make_config(tmp_path, {"environment": str(env), **only("osv"), "osv": {"database": str(db), "max_age": "none"}})
    report = audit(config, tmp_path, now=datetime(2026, 11, 26, tzinfo=UTC))
    assert sorted(f.id for f in report.findings) == ["PYSEC-1", "PYSEC-2"]
    assert report.osv_database is not None
    assert (report.osv_database.advisories, report.osv_database.withdrawn) == (4, 1)
    assert report.osv_database.newest_modified == datetime(2026, 11, 21, 10, tzinfo=UTC)


@pytest.mark.parametrize("fail_closed", [True, False])
def test_a_database_older_than_max_age_fails_the_scan(tmp_path: Path, fail_closed: bool) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "A.json").write_text(json.dumps(advisory("PYSEC-9", ranged({"introduced": "0"}), modified="2026-01-01T00:00:00Z")))
    env = site_packages(tmp_path, {"demo-lib": ("1.0", [])})
    config = make_config(tmp_path, {"environment": str(env), **only("osv"), "osv": {"database": str(db), "max_age": "30d", "fail_closed": fail_closed}})
    report = audit(config, tmp_path, now=datetime(2026, 11, 26, tzinfo=UTC))
    result = scanner(report, "osv")
    assert result.status == "unavailable"
    assert "stale" in (result.reason or "") and "2026-01-01" in (result.reason or "")
    assert report.osv_database is not None and report.osv_database.age_days == pytest.approx(329, abs=1)
    assert [f.id for f in report.findings] == ["PYSEC-9"]  # what the old data does say is still reported
    assert any(line.startswith("osv: could not run (unavailable)") for line in security_problems(report)) is fail_closed


def test_a_missing_database_is_unavailable_never_clean(tmp_path: Path) -> None:
    env = site_packages(tmp_path, {"demo-lib": ("1.0", [])})
    config = make_config(tmp_path, {"environment": str(env), **only("osv"), "osv": {"database": "no-such-db"}})
    report = audit(config, tmp_path)
    assert scanner(report, "osv").status == "unavailable"
    assert "database not found" in (scanner(report, "osv").reason or "")
    assert report.blocking


def test_cvss_v3_base_scores_match_the_specification_examples() -> None:
    assert osv.cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert osv.cvss3_base_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N") == 6.8
    assert osv.cvss3_base_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1
    assert osv.cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N") == 0.0
    assert osv.cvss3_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") is None


# -- licences -------------------------------------------------------------------------------


def gpl_config(tmp_path: Path, waivers: list[dict[str, Any]]) -> ProjectConfig:
    env = site_packages(tmp_path, {"copyleft-lib": ("1.0", ["License-Expression: GPL-3.0-only"]), "fine-lib": ("2.0", ["License-Expression: MIT"])})
    return make_config(tmp_path, {"environment": str(env), **only("licenses"), "licenses": {"allow": ["MIT", "Apache-2.0"]}, "waivers": waivers})


def gpl_waiver(expires_at: str) -> dict[str, Any]:
    return {
        "id": "LIC-1",
        "match": {"id": "license:GPL-3.0-only", "package": "copyleft-lib"},
        "owner": "Lee Legal",
        "justification": "Used as a separate CLI process only; legal reviewed.",
        "expires_at": expires_at,
    }


def test_a_gpl_dependency_outside_the_allow_list_blocks(tmp_path: Path) -> None:
    report = audit(gpl_config(tmp_path, []), tmp_path)
    assert [(f.id, f.package, f.blocking) for f in report.findings] == [("license:GPL-3.0-only", "copyleft-lib", True)]
    assert report.blocking
    assert {d.name: d.license for d in report.dependencies} == {"copyleft-lib": "GPL-3.0-only", "fine-lib": "MIT"}


def test_an_unexpired_waiver_clears_it_and_its_owner_is_an_approval(tmp_path: Path) -> None:
    report = audit(gpl_config(tmp_path, [gpl_waiver("2099-01-01T00:00:00Z")]), tmp_path)
    (finding,) = report.findings
    assert finding.waiver is not None and finding.waiver.id == "LIC-1" and not finding.waiver.expired
    assert not finding.blocking and not report.blocking and security_problems(report) == []
    assert [(a.waiver, a.owner) for a in report.approvals] == [("LIC-1", "Lee Legal")]


def test_the_same_waiver_expired_blocks_again_and_says_so(tmp_path: Path) -> None:
    report = audit(gpl_config(tmp_path, [gpl_waiver("2020-01-01T00:00:00Z")]), tmp_path)
    (finding,) = report.findings
    assert finding.blocking and finding.waiver is not None and finding.waiver.expired
    assert report.approvals == []
    (problem,) = security_problems(report)
    assert "waiver LIC-1 expired at 2020-01-01" in problem


def metadata(*headers: tuple[str, str]) -> Message:
    message = Message()
    for key, value in headers:
        message[key] = value
    return message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("License-Expression", "apache-2.0 or mit"),), ("Apache-2.0 OR MIT", "License-Expression")),
        ((("License", "BSD-3-Clause"),), ("BSD-3-Clause", "License")),
        ((("License", "Apache 2.0"),), ("Apache-2.0", "License")),
        ((("License", "UNKNOWN"), ("Classifier", "License :: OSI Approved :: MIT License")), ("MIT", "classifiers")),
        ((("Classifier", "License :: OSI Approved :: BSD License"),), ("UNKNOWN", None)),
        ((), ("UNKNOWN", "no licence metadata")),
    ],
)
def test_licences_are_read_from_metadata_best_source_first(headers: tuple[tuple[str, str], ...], expected: tuple[str, str | None]) -> None:
    expression, source = licenses.read_license(metadata(*headers))
    assert expression == expected[0]
    if expected[1]:
        assert source == expected[1]


@pytest.mark.parametrize(
    ("expression", "verdict"),
    [
        ("MIT OR GPL-3.0-only", "allow"),
        ("MIT AND GPL-3.0-only", "deny"),
        ("MPL-2.0 AND (MIT OR BSD-3-Clause)", "review"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "deny"),
        ("Zlib", "unlisted"),
    ],
)
def test_licence_policy_takes_the_best_or_branch_and_the_worst_and_term(expression: str, verdict: str) -> None:
    assert licenses.evaluate(expression, allow=["MIT", "BSD-3-Clause"], deny=["GPL-3.0-only", "GPL-2.0-or-later"], review=["MPL-2.0"]) == verdict


def test_unknown_licence_is_a_finding(tmp_path: Path) -> None:
    env = site_packages(tmp_path, {"vague-lib": ("1.0", ["Classifier: License :: OSI Approved :: BSD License"])})
    config = make_config(tmp_path, {"environment": str(env), **only("licenses"), "licenses": {"allow": ["MIT"]}})
    report = audit(config, tmp_path)
    assert [(f.id, f.package, f.blocking) for f in report.findings] == [("license:UNKNOWN", "vague-lib", True)]
    assert "BSD License" in report.findings[0].title


# -- secrets --------------------------------------------------------------------------------


def test_a_planted_aws_key_is_found_and_its_value_never_written(tmp_path: Path) -> None:
    rng = secrets.SystemRandom()
    key_id = "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = "".join(rng.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))
    src = tmp_path / "src"
    src.mkdir()
    (src / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{key_id}"\naws_secret_access_key = "{secret}"\n')
    env = site_packages(tmp_path, {"fine-lib": ("2.0", ["License-Expression: MIT"])})
    config = make_config(tmp_path, {"source_paths": ["src"], "environment": str(env), **only("secrets", "bandit", "sbom")})
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_security_audit.py"),
            "--env",
            "staging",
            "--release",
            "v1.2",
            "--config",
            str(config.path),
            "--output",
            str(out / "security-compliance-report.json"),
        ],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr.decode()
    report = SecurityReport.model_validate_json((out / "security-compliance-report.json").read_text())
    found = {(f.scanner, f.id, f.file, f.line) for f in report.findings}
    assert ("secrets", "secret:AWS Access Key", "src/settings.py", 1) in found
    assert any(f.scanner == "bandit" and f.id == "B105" for f in report.findings)  # bandit saw it too: its message must be withheld
    assert (out / "sbom.cdx.json").is_file()
    forbidden = [value.encode() for value in (key_id, secret)]
    forbidden += [hashlib.sha1(value.encode()).hexdigest().encode() for value in (key_id, secret)]  # detect-secrets' hashes
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr} | {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for where, data in outputs.items():
        for value in forbidden:
            assert value not in data, f"a secret (or its hash) leaked into {where}"


# -- scanner failures -----------------------------------------------------------------------

FAKE_TOOL = """
import sys
if "--version" in sys.argv:
    print("fake-tool 9.9.9")
    sys.exit(0)
mode = sys.argv[1]
if mode == "crash":
    sys.stderr.write("Traceback (most recent call last):\\nRuntimeError: scanner exploded\\n")
    sys.exit(3)
if mode == "garbage":
    print("Run started: this is not JSON")
    sys.exit(0)
"""


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("/nonexistent/bin/scanner", "executable not found: /nonexistent/bin/scanner"),
        ("{python} -m no_such_scanner_module", "No module named"),
        ("{python} fake_tool.py crash", "exited with status 3: RuntimeError: scanner exploded"),
        ("{python} fake_tool.py garbage", "output is not JSON"),
    ],
)
@pytest.mark.parametrize("name", ["bandit", "secrets"])
def test_a_scanner_that_cannot_run_is_unavailable_and_fails_closed(tmp_path: Path, name: str, command: str, reason: str) -> None:
    (tmp_path / "fake_tool.py").write_text(FAKE_TOOL)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n")
    command = command.replace("fake_tool.py", str(tmp_path / "fake_tool.py"))
    config = make_config(tmp_path, {"source_paths": ["src"], **only(name), name: {"command": command}})
    report = audit(config, tmp_path)
    result = scanner(report, name)
    assert result.status == "unavailable" and reason in (result.reason or "")
    assert report.findings == []
    assert security_problems(report) == [f"{name}: could not run (unavailable): {result.reason} (fail-closed); to fix: {result.action}"]
    assert result.action


def test_fail_closed_is_configurable_per_scanner(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n")
    config = make_config(tmp_path, {"source_paths": ["src"], **only("bandit", "secrets"), "bandit": {"command": "/nonexistent/bandit", "fail_closed": False}})
    report = audit(config, tmp_path)
    assert scanner(report, "bandit").status == "unavailable"
    assert scanner(report, "secrets").status == "passed"
    assert not report.blocking and security_problems(report) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pip_audit_without_a_reachable_service_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    env = site_packages(tmp_path, {"demo-lib": ("1.0", [])})
    url = f"http://127.0.0.1:{closed_port()}/v1/query"
    config = make_config(tmp_path, {"environment": str(env), **only("pip_audit"), "pip_audit": {"service": "osv", "osv_url": url, "probe_timeout": "2s"}})
    report = audit(config, tmp_path)
    result = scanner(report, "pip-audit")
    assert result.status == "unavailable"
    assert f"vulnerability service osv not reachable (POST {url}" in (result.reason or "")
    assert result.version  # the tool itself is there; the service is not
    assert report.blocking  # fail-closed by default


class _OsvService(http.server.BaseHTTPRequestHandler):
    """A tiny OSV query API: answers from the advisories in ``self.server.advisories``."""

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = query["package"]["name"], query.get("version")
        hits = [
            vuln
            for vuln in self.server.advisories  # type: ignore[attr-defined]
            if any(a["package"]["name"] == name and osv.affected_fixes(version, a) is not None for a in vuln["affected"])
        ]
        body = json.dumps({"vulns": hits} if hits else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def osv_service() -> Any:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OsvService)
    server.advisories = [advisory("PYSEC-77", ranged({"introduced": "0"}, {"fixed": "1.1"}))]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()
    server.server_close()
    thread.join()


def test_pip_audit_runs_for_real_when_its_service_answers(tmp_path: Path, osv_service: str) -> None:
    env = site_packages(tmp_path, {"demo-lib": ("1.0", []), "safe-lib": ("2.0", [])})
    config = make_config(tmp_path, {"environment": str(env), **only("pip_audit"), "pip_audit": {"service": "osv", "osv_url": osv_service}})
    report = audit(config, tmp_path)
    assert scanner(report, "pip-audit").status == "findings"
    assert [(f.scanner, f.id, f.package, f.version, f.fixed_versions) for f in report.findings] == [("pip-audit", "PYSEC-77", "demo-lib", "1.0", ["1.1"])]
    assert report.blocking


# -- targets and the demo ------------------------------------------------------------------


def test_requirements_roots_resolve_through_the_environment_with_their_dependency_closure(tmp_path: Path) -> None:
    env = site_packages(
        tmp_path,
        {
            "web-app-lib": (
                "3.1",
                ["Requires-Dist: tiny-dep>=1", "Requires-Dist: extra-dep; extra == 'fast'", "Requires-Dist: win-dep; sys_platform == 'nonexistent'"],
            ),
            "tiny-dep": ("1.4", []),
            "extra-dep": ("0.2", []),
            "unrelated": ("9.9", []),
        },
    )
    (tmp_path / "base.txt").write_text("web_app_lib[fast]  # unpinned: the environment gives its version\n")
    (tmp_path / "requirements.txt").write_text("-r base.txt\npinned-only==1.0 \\\n    --hash=sha256:abc\n")
    config = make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": str(env)})
    deps = resolve_dependencies(config.security)
    assert {(c.name, c.version) for c in deps.components} == {("web-app-lib", "3.1"), ("tiny-dep", "1.4"), ("extra-dep", "0.2"), ("pinned-only", "1.0")}
    assert not deps.whole_environment


def test_duplicate_waiver_ids_are_a_config_error(tmp_path: Path) -> None:
    waiver = gpl_waiver("2099-01-01T00:00:00Z")
    with pytest.raises(ConfigError, match="waiver id 'LIC-1' is used twice"):
        make_config(tmp_path, {"waivers": [waiver, waiver]})


def test_an_unknown_environment_is_a_usage_error_of_the_script(tmp_path: Path) -> None:
    config = make_config(tmp_path, {})
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_security_audit.py"),
            "--env",
            "qa",
            "--release",
            "v1",
            "--config",
            str(config.path),
            "--output",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "run_security_audit.py: error:" in proc.stderr and "'qa'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_the_demo_audit_runs_every_scanner_and_is_not_blocking(tmp_path: Path) -> None:
    output = tmp_path / "security-compliance-report.json"
    proc = subprocess.run(
        [sys.executable, "scripts/run_security_audit.py", "--env", "staging", "--release", "v1.2", "--config", "predeploy.yaml", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = SecurityReport.model_validate_json(output.read_text())
    statuses = {s.name: s for s in report.scanners}
    assert set(statuses) == {"bandit", "secrets", "osv", "pip-audit", "licenses", "sbom"}
    for name, result in statuses.items():
        if name == "pip-audit" and result.status == "unavailable":
            assert result.reason and not result.fail_closed  # offline CI: said so, and configured as extra evidence
            continue
        assert result.status in ("passed", "findings"), f"{name}: {result.reason}"
        assert result.version
    assert not report.blocking and security_problems(report) == []
    assert report.sbom == "sbom.cdx.json"
    sbom = json.loads((tmp_path / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert "prometheus-client" in {c["name"] for c in sbom["components"]}
    assert {d.name for d in report.dependencies} >= {"prometheus-client"}


def test_report_paths_and_texts_stay_readable_when_the_config_lives_elsewhere(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text(
        textwrap.dedent("""
        import subprocess
        def run(cmd):
            return subprocess.call(cmd, shell=True)
    """)
    )
    config = make_config(config_dir, {"source_paths": ["../svc"], **only("bandit")})
    report = audit(config, tmp_path)
    b602 = next(f for f in report.findings if f.id == "B602")
    assert b602.file == "../svc/app.py" and b602.line == 4
    assert b602.severity.value == "critical" and b602.blocking
