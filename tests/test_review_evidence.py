"""What the review page reads from the artifacts for "what changed" and the root cause: the API
contract comparison (with the waivers it applied) and the failing services' log tails, from real
artifacts of a demo run (tests/data/evidence/) changed in one place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pytest_predeploy.harness.reviewdata import read_evidence
from tests.project import EVIDENCE


def _artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    shutil.copytree(EVIDENCE, folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


def test_api_changes_and_contract_waivers_are_on_the_page(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path)
    path = artifacts / "api-contract-report.json"
    report = json.loads(path.read_text())
    changes = report["services"][0]["changes"]
    changes.insert(
        0,
        {
            **changes[0],
            "id": "api-removed-without-deprecation",
            "kind": "breaking",
            "operation": "DELETE /api/items/{id}",
            "detail": "removed",
            "blocking": True,
        },
    )
    changes.insert(1, {**changes[0], "operation": "GET /api/legacy", "blocking": False, "waiver": "API-7", "waiver_owner": "Sam Owner"})
    path.write_text(json.dumps(report))
    found = read_evidence(artifacts)
    assert ("api", "breaking (BLOCKING)", "DELETE /api/items/{id}", "removed", "") in found.api_changes
    assert ("api", "addition", "POST /api/checkout", "a new operation", "") in found.api_changes
    waivers = [risk for risk in found.risks if risk.kind == "API contract waiver"]
    assert [(w.id, w.owner) for w in waivers] == [("API-7", "Sam Owner")]


def test_a_failing_smoke_run_shows_the_services_log_tail_as_the_root_cause(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path)
    path = artifacts / "staging-test-results.json"
    report = json.loads(path.read_text())
    report["service_logs"] = [{"service": "worker", "log": "logs/main.log", "lines": ["Traceback (most recent call last):", "RuntimeError: queue DSN missing"]}]
    path.write_text(json.dumps(report))
    causes = read_evidence(artifacts).root_causes[2]
    assert any(c.what.startswith("worker wrote, at the end of logs/main.log") and "RuntimeError: queue DSN missing" in c.excerpt for c in causes), causes
