"""Deployment checklist: a dated revision appended from the rehearsal evidence, with owners."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pytest_predeploy import artifacts as names
from pytest_predeploy.checklist import checklist_problems, write_deployment_checklist

OWNERS = {"deploy": "alice", "rollback": "bo", "default": "release-manager"}


def rehearsal(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / names.DEPLOYMENT_REPORT).write_text(json.dumps({"release": "v1.2", "services": [
        {"service": "api", "status": "deployed", "duration_seconds": 12.5},
        {"service": "worker", "status": "deployed", "duration_seconds": 95.0},
    ]}))
    (root / names.ROLLBACK_REPORT).write_text(json.dumps({"release": "v1.2", "recovery_target_seconds": 30, "services": [
        {"service": "api", "ok": True, "recovery_seconds": 8.0},
        {"service": "worker", "ok": True, "recovery_seconds": 41.0},
    ]}))
    (root / names.SECURITY_REPORT).write_text(json.dumps({"findings": [
        {"id": "PYSEC-2018-28", "severity": "major", "waiver": "W-7"}, {"id": "B101", "severity": "info"},
    ]}))
    (root / names.TEST_RESULTS).write_text("{not json")
    return root


def test_revision_draws_durations_recovery_and_slow_steps_with_owners(tmp_path: Path) -> None:
    artifacts = rehearsal(tmp_path)
    result = write_deployment_checklist(artifacts, "v1.2", OWNERS, now=datetime(2026, 11, 26, 12, tzinfo=timezone.utc))
    assert ("deploy worker", "95.0 s") in result.figures
    assert ("rollback worker recovery", "41.0 s (target 30.0 s)") in result.figures
    texts = {item.text: item for item in result.items}
    slow = next(item for item in result.items if "worker took 95.0 s" in item.text)
    assert slow.owner == "alice"
    over = next(item for item in result.items if "Recovery of worker took 41.0 s, over its 30.0 s target" in item.text)
    assert over.owner == "bo"
    assert not any("api took" in text for text in texts)
    waived = next(item for item in result.items if item.area == "security")
    assert "PYSEC-2018-28" in waived.text and waived.owner == "release-manager"
    assert names.TEST_RESULTS in result.missing and names.PARITY_REPORT in result.missing
    text = (artifacts / names.DEPLOYMENT_CHECKLIST).read_text()
    assert "## Revision 2026-11-26T12:00:00Z: release v1.2" in text
    assert "- [ ] **deploy** (owner: alice): Deploy of worker took 95.0 s" in text
    assert "| deploy api | 12.5 s |" in text
    assert checklist_problems(result) == []


def test_each_run_appends_a_revision_and_keeps_the_earlier_ones(tmp_path: Path) -> None:
    artifacts = rehearsal(tmp_path)
    (artifacts / names.DEPLOYMENT_CHECKLIST).write_text("# Deployment checklist\n\n- [x] hand-written item\n")
    start = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
    write_deployment_checklist(artifacts, "v1.2", OWNERS, now=start)
    write_deployment_checklist(artifacts, "v1.3", OWNERS, now=start + timedelta(days=1))
    text = (artifacts / names.DEPLOYMENT_CHECKLIST).read_text()
    assert "- [x] hand-written item" in text
    assert text.index("release v1.2") < text.index("release v1.3")


def test_slow_threshold_and_unowned_items_are_reported(tmp_path: Path) -> None:
    artifacts = rehearsal(tmp_path)
    result = write_deployment_checklist(artifacts, "v1.2", {}, slow_step=timedelta(seconds=5))
    assert any("api took 12.5 s" in item.text for item in result.items)
    problems = checklist_problems(result)
    assert len(problems) == 1 and "no owner for" in problems[0] and "deploy" in problems[0]


def test_no_evidence_is_a_guideline_miss_not_a_crash(tmp_path: Path) -> None:
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS)
    assert result.sources == [] and result.items == []
    assert any("no rehearsal evidence" in p for p in checklist_problems(result))
    assert "Nothing new from this rehearsal" in (tmp_path / names.DEPLOYMENT_CHECKLIST).read_text()


def test_failed_steps_become_items(tmp_path: Path) -> None:
    (tmp_path / names.DEPLOYMENT_REPORT).write_text(json.dumps({"services": [{"name": "api", "returncode": 3, "duration": 2}]}))
    (tmp_path / names.ROLLBACK_REPORT).write_text(json.dumps({"steps": [{"service": "api", "status": "failed"}]}))
    result = write_deployment_checklist(tmp_path, "v1.2", OWNERS)
    assert any("rehearsal deploy of api failed" in item.text for item in result.items)
    assert any("rollback rehearsal of api failed" in item.text for item in result.items)
