"""Parity on the shape of real configuration: rules written under a node cover that node, lists
aligned by content, multi-document YAML (Kubernetes manifests), a bounded report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.intake.parity import DriftItem, ParityReport, compare_environments, summary_text
from tests.parity_project import baselines

DATA = Path(__file__).resolve().parent / "data" / "parity"
DEMO_RULES = {
    "rules": [
        {"path": "infrastructure.services[*].runtime", "severity": "critical"},
        {"path": "infrastructure.database.*", "severity": "critical", "remediation": "restore the database block"},
        {"path": "infrastructure.cache.*", "severity": "critical"},
    ]
}
PRODUCTION = "database: {engine: postgres, version: '16', pool: 20}\ncache: {engine: redis}\nservices:\n  - {name: api, runtime: python3.12}\nextras: {a: 1}\n"


def compare(config: object) -> ParityReport:
    return compare_environments(config, "staging", "production", "v1.2")  # type: ignore[arg-type]


def by_path(report: ParityReport) -> dict[str, DriftItem]:
    return {item.path: item for item in report.items}


@pytest.mark.parametrize(
    ("staging", "path", "kind"),
    [
        (PRODUCTION.replace("database: {engine: postgres, version: '16', pool: 20}\n", ""), "infrastructure.database", "removed"),
        (PRODUCTION.replace("{engine: postgres, version: '16', pool: 20}", "disabled"), "infrastructure.database", "type-changed"),
        (PRODUCTION.replace("{engine: postgres, version: '16', pool: 20}", "null"), "infrastructure.database", "type-changed"),
        (PRODUCTION.replace("{engine: postgres, version: '16', pool: 20}", "[]"), "infrastructure.database", "type-changed"),
        (
            PRODUCTION.replace("  - {name: api, runtime: python3.12}\n", "  - {name: api, runtime: python3.12}\n  - {name: new}\n"),
            "infrastructure.services[name=new]",
            "added",
        ),
        (PRODUCTION.replace("cache: {engine: redis}\n", ""), "infrastructure.cache", "removed"),
    ],
)
def test_a_rule_covers_the_removal_addition_and_type_change_of_the_node_it_is_written_under(tmp_path: Path, staging: str, path: str, kind: str) -> None:
    report = compare(baselines(tmp_path, staging, PRODUCTION, parity=DEMO_RULES))
    item = by_path(report)[path]
    assert (item.kind, item.severity, item.blocking) == (kind, "critical", True)
    assert "written under this node" in (item.rule or "") and not report.passed


def test_a_removed_block_takes_the_severity_of_its_worst_leaf_and_its_remediation(tmp_path: Path) -> None:
    parity = {"rules": [{"path": "**.engine", "severity": "critical", "remediation": "restore the engine"}, {"path": "**", "severity": "minor"}]}
    report = compare(baselines(tmp_path, "extras: {a: 1}\n", PRODUCTION, parity=parity))
    items = by_path(report)
    assert items["infrastructure.database"].severity == "critical" and items["infrastructure.database"].remediation == "restore the engine"
    assert "infrastructure.database.engine" in (items["infrastructure.database"].rule or "")
    assert items["infrastructure.services"].severity == "minor"


def test_rules_under_other_nodes_leave_an_unrelated_block_at_its_own_severity(tmp_path: Path) -> None:
    staging = PRODUCTION + "feature: {beta: true}\n"
    item = by_path(compare(baselines(tmp_path, staging, PRODUCTION, parity=DEMO_RULES)))["infrastructure.feature"]
    assert (item.kind, item.severity) == ("added", "major")


def _workflow(tmp_path: Path, staging: str) -> ParityReport:
    production = (DATA / "workflow" / "production.yaml").read_text(encoding="utf-8")
    return compare(baselines(tmp_path, staging, production, name="tests.yaml"))


def test_one_step_inserted_into_a_workflow_is_one_added_item_at_its_position(tmp_path: Path) -> None:
    report = _workflow(tmp_path, (DATA / "workflow" / "staging.yaml").read_text(encoding="utf-8"))
    assert [(item.path, item.kind) for item in report.items] == [("infrastructure.jobs.tests.steps[4]", "added")]
    added = report.items[0].source_value
    assert added is not None and added.value == {"name": "Lint", "run": "pre-commit run --all-files"}


def test_aligned_lists_report_changes_in_place_and_removals_at_the_target_position(tmp_path: Path) -> None:
    text = (DATA / "workflow" / "staging.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("      - run: mypy\n", "")
        .replace("pytest -v --tb=short", "pytest -x")
        .replace("      - uses: actions/checkout@v4\n", "      - uses: actions/checkout@v4\n        with: {fetch-depth: 0}\n")
    )
    items = {(item.path, item.kind) for item in _workflow(tmp_path, text).items}
    assert items == {
        ("infrastructure.jobs.tests.steps[0].with", "added"),
        ("infrastructure.jobs.tests.steps[4]", "added"),
        ("infrastructure.jobs.tests.steps[6].run", "changed"),  # staging's index
        ("infrastructure.jobs.tests.steps[6]", "removed"),  # production's index
    }


def test_kubernetes_manifests_compare_object_by_object_whatever_their_order(tmp_path: Path) -> None:
    staging, production = ((DATA / "k8s" / f"{env}.yaml").read_text(encoding="utf-8") for env in ("staging", "production"))
    parity = {"rules": [{"path": "infrastructure.*/Deployment/*/*.spec.template.spec.containers[*].image", "severity": "critical"}]}
    report = compare(baselines(tmp_path, staging, production, name="manifests.yaml", parity=parity))
    items = {(item.path, item.kind, item.severity) for item in report.items}
    assert items == {
        ("infrastructure.apps/v1/Deployment/shop/api.spec.template.spec.containers[name=api].image", "changed", "critical"),
        ("infrastructure.v1/ConfigMap/shop/api-extra", "added", "major"),
    }


def test_documents_that_are_not_kubernetes_objects_are_keyed_by_position(tmp_path: Path) -> None:
    report = compare(baselines(tmp_path, "a: 1\n---\nb: 2\n---\n", "a: 1\n---\nb: 3\n"))
    assert [(item.path, item.kind) for item in report.items] == [("infrastructure.1.b", "changed")]
    # One plain document stays as it is.
    assert [item.path for item in compare(baselines(tmp_path, "a: 1\n", "a: 2\n")).items] == ["infrastructure.a"]


def test_the_same_kubernetes_object_twice_in_one_file_is_an_error_naming_the_line(tmp_path: Path) -> None:
    twice = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: c2VjcmV0LXZhbHVl}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
    with pytest.raises(ConfigError, match=r"staging/infra\.yaml:6: a second document for v1/Secret//db \(the first starts on line 1\)"):
        compare(baselines(tmp_path, twice, "a: 1\n"))


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: demo-shop-api:v1.2
          ports: [{{containerPort: 8080}}]
{resources}---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: shop}}
spec: {{selector: {{app: api}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
LIMITS = "          resources:\n            limits: {memory: 512Mi}\n"


def test_replicas_and_a_memory_limit_only_production_has_are_drift_on_their_object_paths(tmp_path: Path) -> None:
    staging = DEPLOYMENT.format(replicas=1, resources="")
    production = DEPLOYMENT.format(replicas=3, resources=LIMITS)
    parity = {"rules": [{"path": "infrastructure.*/Deployment/*/*.spec.template.spec.containers[*].resources", "severity": "critical"}]}
    report = compare(baselines(tmp_path, staging, production, name="manifests.yaml", parity=parity))
    assert {(item.path, item.kind, item.severity) for item in report.items} == {
        ("infrastructure.apps/v1/Deployment/shop/api.spec.replicas", "changed", "major"),
        ("infrastructure.apps/v1/Deployment/shop/api.spec.template.spec.containers[name=api].resources", "removed", "critical"),
    }
    assert not report.passed and report.summary.blocking == 1, "a critical drift no waiver covers blocks Gate 1"


def test_a_report_lists_at_most_max_report_items_and_counts_the_rest_in_a_note(tmp_path: Path) -> None:
    production = "".join(f"key_{i:03d}: {i}\n" for i in range(60))
    staging = "".join(f"key_{i:03d}: {i + 1}\n" for i in range(60))
    parity = {
        "max_report_items": 10,
        "rules": [{"path": "infrastructure.key_059", "severity": "critical"}, {"path": "infrastructure.key_00?", "severity": "minor"}],
    }
    report = compare(baselines(tmp_path, staging, production, parity=parity))
    assert len(report.items) == 10 and report.items[0].path == "infrastructure.key_059", "blocking first, never cut"
    assert (report.summary.critical, report.summary.major, report.summary.minor, report.summary.blocking) == (1, 49, 10, 1)
    assert report.notes == [
        "... 50 more items not listed (40 major, 10 minor): the report lists the first 10 (parity.max_report_items), blocking and most severe first; the summary counts every item"
    ]
    assert not report.passed and f"note: {report.notes[0]}" in summary_text(report)


def test_a_large_added_block_is_shown_within_a_bounded_size(tmp_path: Path) -> None:
    block = {f"group_{i}": {f"item_{j}": {f"key_{k}": "v" * 400 for k in range(25)} for j in range(25)} for i in range(25)}
    staging = yaml.safe_dump({"base": 1, "block": block})
    report = compare(baselines(tmp_path, staging, "base: 1\n"))
    [item] = report.items
    assert item.path == "infrastructure.block" and item.source_value is not None and item.source_value.truncated
    assert len(json.dumps(item.source_value.value)) < 6000, "about 4,000 characters of a value at most, whatever its size"
