"""What the dependency scan matches: every pin from every file, pins the environment does not
satisfy, one finding per vulnerability whatever its aliases, markers for the release's Python."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.config import ProjectConfig, load_config
from pytest_predeploy.core.fields import Severity
from pytest_predeploy.security import SecurityReport, osv, run_security_audit, security_problems
from tests.security_project import make_config, only
from tests.wheels import make_wheel

OSV_DB = Path(__file__).parent / "data" / "security" / "osv"
ALL_SCANNERS = ("bandit", "secrets", "osv", "pip_audit", "licenses", "sbom")


def osv_only(**extra: Any) -> dict[str, Any]:
    scanners: dict[str, Any] = {name: {"enabled": name == "osv"} for name in ALL_SCANNERS}
    scanners["osv"] = {"database": str(OSV_DB), "max_age": "none"}
    return {**scanners, **extra}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def site_packages(folder: Path, dists: dict[str, str]) -> Path:
    """A site-packages folder holding only distribution metadata: name -> version."""
    for name, dist_version in dists.items():
        write(folder / f"{name.replace('-', '_')}-{dist_version}.dist-info" / "METADATA", f"Metadata-Version: 2.4\nName: {name}\nVersion: {dist_version}\n")
    return folder


def audit(config: ProjectConfig, root: Path) -> SecurityReport:
    return run_security_audit(config, "staging", "v1.2", root / "out" / "security-compliance-report.json")


def findings(report: SecurityReport) -> set[tuple[str, str | None, str | None]]:
    return {(f.id, f.package, f.version) for f in report.findings}


# -- every (file, pin) ----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["two-services", "include"])
def test_a_vulnerable_pin_is_found_even_when_another_file_pins_a_fixed_version(tmp_path: Path, layout: str) -> None:
    if layout == "two-services":
        write(tmp_path / "api" / "requirements.txt", "requests==2.19.1\n")
        write(tmp_path / "worker" / "requirements.txt", "flask-ish==1.0\nrequests==2.31.0\n")
        files = ["api/requirements.txt", "worker/requirements.txt"]
        where = "api/requirements.txt:1"
    else:
        write(tmp_path / "base.txt", "requests==2.19.1\n")
        write(tmp_path / "requirements.txt", "-r base.txt\nrequests==2.31.0\n")
        files = ["requirements.txt"]
        where = "base.txt:1"
    report = audit(make_config(tmp_path, {"requirements": files, **osv_only()}), tmp_path)
    assert findings(report) == {("PYSEC-2018-28", "requests", "2.19.1"), ("PYSEC-2023-74", "requests", "2.19.1")}
    assert all(f.source == where and f.blocking for f in report.findings) and report.blocking
    assert any(f"PYSEC-2018-28 in requests 2.19.1 ({where})" in line for line in security_problems(report))


# -- pins the environment does not satisfy ---------------------------------------------------


def test_an_installed_version_outside_the_pin_is_a_blocking_finding(tmp_path: Path) -> None:
    env = site_packages(tmp_path / "site-packages", {"urllib3": "2.2.0"})
    write(tmp_path / "requirements.txt", "urllib3==1.24.*\n")
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": str(env), **osv_only()}), tmp_path)
    (finding,) = report.findings
    assert (finding.id, finding.package, finding.version, finding.source) == ("pin-mismatch", "urllib3", "2.2.0", "requirements.txt:1")
    assert "does not satisfy urllib3==1.24.*" in finding.title
    assert finding.blocking and report.blocking
    # The report says what was scanned, paths as the project names them.
    assert report.scanned == ["requirements requirements.txt in site-packages: 1 distribution"]
    assert report.summary_line().endswith("; scanned requirements requirements.txt in site-packages: 1 distribution")
    # Inside the range, the installed version is the release's and is matched as such.
    inside = site_packages(tmp_path / "inside", {"urllib3": "1.24.1"})
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": str(inside), **osv_only()}), tmp_path)
    assert findings(report) == {("PYSEC-2019-133", "urllib3", "1.24.1")}


def test_with_environment_current_a_pin_the_running_interpreter_does_not_satisfy_blocks(tmp_path: Path) -> None:
    installed = pytest.__version__
    write(tmp_path / "requirements.txt", "pytest==1.0.*\npackaging==0.1\n")
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": "current", **osv_only()}), tmp_path)
    mismatches = {(f.package, f.version) for f in report.findings if f.id == "pin-mismatch" and f.blocking}
    assert mismatches == {("pytest", installed), ("packaging", version("packaging"))}
    assert report.blocking


# -- one finding per alias group -----------------------------------------------------------


def test_records_of_one_vulnerability_are_one_finding_with_every_id(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", "requests==2.19.1\n")
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], **osv_only()}), tmp_path)
    assert sorted(f.id for f in report.findings) == ["PYSEC-2018-28", "PYSEC-2023-74"]  # no GHSA copy of either
    finding = report.findings[0]
    assert finding.aliases == ["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]
    assert finding.severity == Severity.critical  # the GHSA record's CVSS 9.8: the worst of the group
    assert finding.fixed_versions == ["2.20.0"]


def test_records_that_only_share_a_cve_are_merged_too() -> None:
    db = osv.load_database(OSV_DB, {"requests"})
    (found,) = osv.match(db, "requests", "2.30.0", Severity.major)
    assert (found.id, found.aliases) == ("PYSEC-2023-74", ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"])


def waiver(match_id: str) -> dict[str, Any]:
    return {
        "id": "W-1",
        "match": {"id": match_id, "scanner": "osv"},
        "owner": "Sam Security",
        "justification": "Proxy auth unused.",
        "expires_at": "2099-01-01T00:00:00Z",
    }


@pytest.mark.parametrize("named", ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"])
def test_a_waiver_may_name_any_alias_of_the_vulnerability(tmp_path: Path, named: str) -> None:
    write(tmp_path / "requirements.txt", "requests==2.30.0\n")
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "waivers": [waiver(named)], **osv_only()}), tmp_path)
    (finding,) = report.findings
    assert finding.id == "PYSEC-2023-74" and finding.waiver is not None and finding.waiver.id == "W-1"
    assert not finding.blocking and not report.blocking and security_problems(report) == []


# -- environment markers for the release's Python ---------------------------------------------


REQUIREMENTS_WITH_MARKER = 'requests==2.31.0\nlegacy-lib==1.0 ; python_version < "3.8"\n'


def test_markers_are_evaluated_for_the_configured_target_python(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", REQUIREMENTS_WITH_MARKER)
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "target_python": "3.7", **osv_only()}), tmp_path)
    assert findings(report) == {("PYSEC-2099-1", "legacy-lib", "1.0")}
    assert report.target_python == "Python 3.7.0 (security.target_python)"
    assert report.skipped_requirements == []


def test_a_line_skipped_by_its_marker_is_listed_in_the_report(tmp_path: Path) -> None:
    write(tmp_path / "requirements.txt", REQUIREMENTS_WITH_MARKER)
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "target_python": "3.12", **osv_only()}), tmp_path)
    assert report.findings == []
    assert report.skipped_requirements == ['requirements.txt:2: legacy-lib==1.0 ; python_version < "3.8"']
    notes = next(s for s in report.scanners if s.name == "osv").notes
    assert 'skipped (marker false): requirements.txt:2: legacy-lib==1.0 ; python_version < "3.8"' in notes


def test_the_default_target_is_the_python_of_the_dependency_environment(tmp_path: Path) -> None:
    env = site_packages(tmp_path / "lib" / "python3.7" / "site-packages", {"legacy-lib": "1.0"})
    write(tmp_path / "requirements.txt", REQUIREMENTS_WITH_MARKER)
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": str(env), **osv_only()}), tmp_path)
    assert ("PYSEC-2099-1", "legacy-lib", "1.0") in findings(report)
    assert report.target_python is not None and report.target_python.startswith("Python 3.7.0 (the python3.7 folder of")


def test_a_virtualenv_is_asked_which_python_it_runs(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    write(tmp_path / "requirements.txt", "requests==2.31.0\n")
    report = audit(make_config(tmp_path, {"requirements": ["requirements.txt"], "environment": "venv", **osv_only()}), tmp_path)
    running = ".".join(map(str, sys.version_info[:3]))
    assert report.target_python == f"Python {running} (the interpreter of {tmp_path / 'venv'})"


# -- environment: release -------------------------------------------------------------------


def test_environment_release_audits_the_release_s_own_virtualenv_not_the_plugin_s(tmp_path: Path) -> None:
    # What `predeploy init` writes: the audit scans what the local target deploys for the release
    # (its wheel and its dependencies, installed as the target installs them), never the
    # virtualenv running pytest, and the report says what it scanned.
    wheels = tmp_path / "wheels"
    # Licences as older wheels carry them: a LICENSE file beside the METADATA (blinker's MIT text).
    mit = (Path(__file__).parent / "data" / "licenses" / "blinker-1.9.0.dist-info" / "LICENSE.txt").read_bytes()
    make_wheel(wheels, "shop", "2.0", {"shop.py": b"import tinydep\n", "shop-2.0.dist-info/LICENSE": mit}, ("tinydep>=1",))
    make_wheel(wheels, "tinydep", "1.3", {"tinydep.py": b"", "tinydep-1.3.dist-info/LICENSE": mit})
    data = {
        "version": 1,
        "project": "shop",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "shop", "command": "{python} -m shop --port {port}"}],
        "staging": {"releases": {"kind": "dist", "dist": "wheels/{service}-{version}-*.whl", "pip_args": ["--no-index", "--find-links", str(wheels)]}},
        "approvals": {"upstream": [], "allow_none": True},
        "security": {"environment": "release", **only("licenses", "osv"), "osv": {"database": str(OSV_DB), "max_age": "none"}},
    }
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    report = run_security_audit(load_config(tmp_path / "predeploy.yaml"), "staging", "v2.0", tmp_path / "out" / "security-compliance-report.json")
    assert {(d.name, d.version, d.license) for d in report.dependencies} == {("shop", "2.0", "MIT"), ("tinydep", "1.3", "MIT")}
    assert report.findings == [] and not report.blocking
    [scanned] = report.scanned
    assert scanned.startswith("shop: release v2.0's own virtualenv, built from wheels/shop-2.0-py3-none-any.whl (sha256 ")
    assert scanned.endswith("as the local target builds it: 2 distributions")
    assert scanned in report.summary_line()


def test_environment_release_of_a_release_on_the_pytest_interpreter_is_unavailable_until_its_lock_is_named(tmp_path: Path) -> None:
    source = tmp_path / "svc"
    source.mkdir()
    data = {
        "version": 1,
        "project": "svc",
        "environments": {"staging": {}, "production": {}},
        "services": [{"name": "svc", "source": "svc", "command": "{python} app.py"}],
        "staging": {"releases": {"kind": "working_tree"}},
        "approvals": {"upstream": [], "allow_none": True},
        "security": {"environment": "release", **only("osv"), "osv": {"database": str(OSV_DB), "max_age": "none"}},
    }
    (tmp_path / "predeploy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    report = run_security_audit(load_config(tmp_path / "predeploy.yaml"), "staging", "v2.0", tmp_path / "out.json")
    [osv_scan] = [s for s in report.scanners if s.name == "osv"]
    assert osv_scan.status == "unavailable" and report.blocking
    assert osv_scan.reason == (
        "no dependencies to scan: svc is released as working_tree and runs on the interpreter running pytest, whose environment is the "
        "plugin's own: name the release's dependencies in security.requirements (its lock file) or security.distributions"
    )
