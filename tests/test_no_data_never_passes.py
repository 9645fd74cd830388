"""Checks configured or edited into meaninglessness never pass (issue 25, cases 8-10): no scanner
ran, no smoke test passed, one person standing for a repeated role, an invisible approver, an
advisory database that is not the one downloaded. Each judge is the one the gates and the sealed
package use, fed real artifacts of a demo run (tests/data/evidence/) changed in one place."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pytest_predeploy.intake.approvals import ApprovalsConfig, intake_problems, validate_intake
from pytest_predeploy.readiness.signoff import ReadinessConfig
from pytest_predeploy.rehearsal.smoke import TestResultsReport, smoke_problems
from pytest_predeploy.security import SecurityReport, security_problems
from pytest_predeploy.security.osv import DatabaseUnavailable, load_database, source_record_path
from tests.project import EVIDENCE


def evidence(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((EVIDENCE / name).read_text())
    return data


def test_the_unchanged_evidence_passes_its_judges() -> None:
    assert security_problems(SecurityReport.model_validate(evidence("security-compliance-report.json"))) == []
    assert smoke_problems(TestResultsReport.model_validate(evidence("staging-test-results.json")), 0.0) == []


def test_all_scanners_disabled_is_no_data_not_a_clean_scan() -> None:
    data = evidence("security-compliance-report.json")
    for scanner in data["scanners"]:  # type: ignore[attr-defined]
        scanner.update(status="disabled", reason="enabled: false", findings=0)
    problems = security_problems(SecurityReport.model_validate(data))
    assert problems and "no scanner ran" in problems[-1] and "nothing was scanned" in problems[-1]


def test_every_smoke_test_skipped_fails_even_with_no_coverage_required() -> None:
    data = evidence("staging-test-results.json")
    for suite in data["suites"]:  # type: ignore[attr-defined]
        for test in suite["tests"]:
            test["outcome"] = "skipped"
        suite["totals"].update(passed=0, skipped=len(suite["tests"]))
    data["totals"].update(passed=0, skipped=15)  # type: ignore[attr-defined]
    problems = smoke_problems(TestResultsReport.model_validate(data), 0.0)
    assert problems == ["no smoke test passed (15 reported, 15 skipped): nothing was verified on staging (no data)"]


@pytest.mark.parametrize("roles", [["release-manager", "release-manager"], ["qa-lead", "QA-Lead"], ["release-manager", "\u200b"]])
def test_a_repeated_or_invisible_required_role_is_refused(roles: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="more than once|blank role"):
        ReadinessConfig.model_validate({"required_roles": roles}, context={"base_dir": tmp_path})


@pytest.mark.parametrize("approver", ["\u200b", " \u2060 ", "\u00a0", "\ufeff"])
def test_an_approver_of_invisible_characters_names_no_one(approver: str, tmp_path: Path) -> None:
    (tmp_path / "p4.yaml").write_text(yaml.safe_dump({"release": "v1", "status": "approved", "approved_by": approver, "approved_at": "2026-01-01T00:00:00Z"}))
    config = ApprovalsConfig.model_validate({"upstream": [{"name": "p4", "file": "p4.yaml"}]}, context={"base_dir": tmp_path})
    report = validate_intake(config, "v1", operator="")
    assert [check.status for check in report.checks] == ["malformed"]
    assert "must name who decided" in intake_problems(report)[0]


def _one_record_zip(path: Path) -> Path:
    record = {"id": "PYSEC-0000-1", "modified": "2026-11-01T00:00:00Z", "affected": [{"package": {"ecosystem": "PyPI", "name": "nothing-we-use"}}]}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("PYSEC-0000-1.json", json.dumps(record))
    return path


def test_a_database_swapped_for_one_unrelated_record_is_unavailable(tmp_path: Path) -> None:
    db = _one_record_zip(tmp_path / "osv-pypi.zip")
    source_record_path(db).write_text(json.dumps({"fetched_at": "2026-12-01T00:00:00Z", "advisories": 2661}))
    with pytest.raises(DatabaseUnavailable, match="holds 1 advisories but its source record says 2661"):
        load_database(db, ["flask"])


def test_a_database_changed_after_download_is_unavailable(tmp_path: Path) -> None:
    db = _one_record_zip(tmp_path / "osv-pypi.zip")
    source_record_path(db).write_text(json.dumps({"fetched_at": "2026-12-01T00:00:00Z", "advisories": 1, "sha256": "0" * 64}))
    with pytest.raises(DatabaseUnavailable, match="sha256 differs"):
        load_database(db, ["flask"])


def test_a_download_time_in_the_future_is_not_trusted(tmp_path: Path) -> None:
    db = _one_record_zip(tmp_path / "osv-pypi.zip")
    source_record_path(db).write_text(json.dumps({"fetched_at": "2099-01-01T00:00:00Z", "advisories": 1}))
    with pytest.raises(DatabaseUnavailable, match="in the future"):
        load_database(db, ["flask"])
