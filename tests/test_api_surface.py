"""The public API (``pytest_predeploy.api``) changes only on purpose: its names are a snapshot kept
here and the record of names added and removed in CHANGELOG.md; what it promises gates is typed
(``load`` returns the model it reads; the run context is a read-only GateContext)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import assert_type

import pytest
from pydantic import Field

import pytest_predeploy
from pytest_predeploy import api
from pytest_predeploy.api import ArtifactModel, GateContext, RunContext, load, write_artifact
from pytest_predeploy.config import load_config

REPO = Path(__file__).resolve().parents[1]
CHANGELOG = REPO / "CHANGELOG.md"

#: ``api.__all__`` as it stands. A name added or removed fails the tests below until it is also
#: changed here and recorded in CHANGELOG.md (an "- API:" line under Added, or under Removed).
SNAPSHOT = frozenset(
    {
        "ApiContractReport",
        "ArtifactError",
        "ArtifactModel",
        "ChecklistResult",
        "ConfigError",
        "DeploymentReport",
        "EXIT_USAGE",
        "Evidence",
        "GateContext",
        "HttpResponse",
        "IntakeReport",
        "Manifest",
        "OBSERVABILITY_METRICS",
        "ObservabilityResult",
        "OperationalResult",
        "ParityReport",
        "PredeployError",
        "RefreshResult",
        "RollbackReport",
        "RunContext",
        "ScriptContext",
        "SecurityReport",
        "SignoffStatus",
        "StepError",
        "TRANSCRIPTS_DIR",
        "TestResultsReport",
        "add_common_arguments",
        "await_signoff",
        "bar_chart_svg",
        "checklist_problems",
        "compare_environments",
        "contract_problems",
        "deployment_problems",
        "intake_problems",
        "interrupt_on_sigterm",
        "load",
        "load_context",
        "no_data",
        "observability_problems",
        "operational_problems",
        "package_readiness",
        "parity_problems",
        "read_artifact",
        "read_operational",
        "read_refresh",
        "refresh_problems",
        "require",
        "rollback_problems",
        "run_main",
        "run_security_audit",
        "run_smoke_tests",
        "security_problems",
        "show_deployment",
        "show_intake",
        "show_observability",
        "show_parity",
        "show_rollback",
        "show_security",
        "show_signoffs",
        "show_smoke",
        "smoke_problems",
        "smoke_request",
        "summary_text",
        "write_artifact",
    }
)


def changelog_api(text: str) -> set[str]:
    """The names the changelog's "- API:" lines add, minus those they remove, oldest release first."""
    names: set[str] = set()
    releases = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    for release in reversed(releases):
        for section in re.split(r"^### ", release, flags=re.MULTILINE)[1:]:
            heading = section.split("\n", 1)[0].strip()
            # A bullet: "- API: ..." and its indented continuation lines.
            for bullet in re.findall(r"^- API:.*(?:\n  .*)*", section, flags=re.MULTILINE):
                listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", bullet))
                if heading == "Added":
                    names |= listed
                elif heading == "Removed":
                    names -= listed
    return names


def test_the_api_is_its_snapshot() -> None:
    public = set(api.__all__)
    assert len(api.__all__) == len(public), "api.__all__ lists a name twice"
    added, removed = sorted(public - SNAPSHOT), sorted(SNAPSHOT - public)
    assert (added, removed) == ([], []), (
        f"pytest_predeploy.api changed (added {added}, removed {removed}): update SNAPSHOT in {Path(__file__).name} "
        "and record it in CHANGELOG.md's Unreleased section (an '- API:' line under Added or Removed: a name is removed only with a release note)"
    )


def test_the_changelog_records_every_name_added_and_removed() -> None:
    recorded = changelog_api(CHANGELOG.read_text(encoding="utf-8"))
    unrecorded, stale = sorted(SNAPSHOT - recorded), sorted(recorded - SNAPSHOT)
    assert (unrecorded, stale) == ([], []), (
        f"CHANGELOG.md does not record {unrecorded} as added, or still lists {stale} as public: "
        "add an '- API:' line under Added or Removed in its Unreleased section"
    )


def test_the_changelog_reader_sees_additions_and_removals() -> None:
    text = "# Changelog\n\n## [Unreleased]\n\n### Removed\n\n- API: `old` (gone).\n\n## [0.1.0]\n\n### Added\n\n- API: `old`, `kept`,\n  `wrapped` (see the plain word).\n"
    assert changelog_api(text) == {"kept", "wrapped"}


def test_every_public_name_is_importable_from_the_package_too() -> None:
    for name in sorted(SNAPSHOT):
        assert getattr(pytest_predeploy, name) is getattr(api, name), name


class Note(ArtifactModel):
    text: str = Field(description="A note.")


def test_load_returns_the_model_it_reads(tmp_path: Path) -> None:
    path = write_artifact(tmp_path / "note.json", Note(release="v1", step="test", text="hello"))
    note = load(path, Note)
    assert_type(note, Note)  # mypy checks tests/: load() is generic, not Any
    assert note.text == "hello"
    path.write_text('{"release": "v1", "step": "test"}')
    with pytest.raises(pytest.fail.Exception, match="text"):
        load(path, Note)


def test_the_run_context_is_a_gate_context(tmp_path: Path) -> None:
    (tmp_path / "predeploy.yaml").write_text(
        "version: 1\nproject: shop\nenvironments: {staging: {}, production: {}}\nservices: [{name: api}]\napprovals: {upstream: [], allow_none: true}\n"
    )
    config = load_config(tmp_path / "predeploy.yaml")
    view: GateContext = RunContext(config=config, release="v1.2", previous_release="v1.1", env="staging", artifacts=tmp_path)
    assert (view.release, view.previous_release, view.env) == ("v1.2", "v1.1", "staging")
    assert view.artifact("staging-parity-report.json") == tmp_path / "staging-parity-report.json"
    assert (view.config.project, view.config.smoke, view.config.readiness) == ("shop", config.smoke, config.readiness)
