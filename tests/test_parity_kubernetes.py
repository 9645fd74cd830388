"""Parity on real Kubernetes manifests: references to Secret objects are names, not secrets, so a
manifest compared with itself gives nothing; weak secret values are findings and are redacted
on token boundaries only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_predeploy.intake.parity import ParityReport, compare_environments, summary_text
from tests.parity_project import baselines

UPSTREAM = Path(__file__).resolve().parent / "data" / "parity" / "upstream"


def compare(config: object) -> ParityReport:
    return compare_environments(config, "staging", "production", "v1.2")  # type: ignore[arg-type]


def everything_shown(report: ParityReport) -> str:
    return report.model_dump_json() + summary_text(report)


@pytest.mark.parametrize("manifest", ["ingress-nginx-deploy.yaml", "argo-cd-install-excerpt.yaml"])
def test_a_real_multi_document_manifest_compared_with_itself_gives_no_item(tmp_path: Path, manifest: str) -> None:
    text = (UPSTREAM / manifest).read_text(encoding="utf-8")
    report = compare(baselines(tmp_path, text, text, name="manifests.yaml"))
    assert [(item.path, item.detail) for item in report.items] == []
    assert report.passed


POD = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: shop}}
spec:
  template:
    spec:
      serviceAccountName: api
      imagePullSecrets: [{{name: regcred}}]
      containers:
        - name: api
          image: shop/api:1.0
          envFrom: [{{secretRef: {{name: api-env}}}}]
          env:
            - name: DB_PASSWORD
              valueFrom: {{secretKeyRef: {{name: db-secret, key: {key}}}}}
          volumeMounts: [{{name: tls, mountPath: /tls}}]
      volumes:
        - name: tls
          secret:
            secretName: {tls}
            items: [{{key: tls.crt, path: tls.crt}}, {{key: tls.key, path: tls.key}}]
            defaultMode: 0400
        - name: bundle
          projected:
            sources:
              - secret: {{name: ca-bundle, items: [{{key: ca.crt, path: ca.crt}}]}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: api, namespace: shop}}
secrets: [{{name: api-token-secret}}]
"""


def test_references_to_secret_objects_are_shown_and_never_reused_secrets(tmp_path: Path) -> None:
    staging = POD.format(tls="api-tls-2026", key="password")
    production = POD.format(tls="api-tls-2025", key="db-password")
    report = compare(baselines(tmp_path, staging, production, name="manifests.yaml"))
    base = "infrastructure.apps/v1/Deployment/shop/api.spec.template.spec"
    shown = {item.path: (item.kind, item.source_value.value, item.target_value.value) for item in report.items if item.source_value and item.target_value}
    assert shown == {
        f"{base}.volumes[name=tls].secret.secretName": ("changed", "api-tls-2026", "api-tls-2025"),
        f"{base}.containers[name=api].env[name=DB_PASSWORD].valueFrom.secretKeyRef.key": ("changed", "password", "db-password"),
    }
    assert len(report.items) == 2 and report.passed


def test_a_value_under_a_secret_key_that_is_no_reference_is_still_a_secret(tmp_path: Path) -> None:
    text = "app:\n  secret: {secretName: tls, password: Sh4red-Pw-0c1e7f}\n"
    report = compare(baselines(tmp_path, text, text))
    assert ("infrastructure.app.secret.password", "REUSED") in [(item.path, item.detail) for item in report.items] and not report.passed


COMPOSE = """services:
  web:
    image: getsentry/sentry:{version}
    environment:
      AWS_SECRET_ACCESS_KEY: sentry
      SENTRY_DSN: https://sentry@o1.ingest.example.com/{project}
      SENTRY_EVENT_RETENTION_DAYS: '90'
  worker:
    image: getsentry/sentry:{version}
    command: run worker
"""


def test_a_secret_that_is_a_common_word_is_weak_and_redacted_only_as_a_whole_token(tmp_path: Path) -> None:
    staging = COMPOSE.format(version="24.2.0", project=2)
    production = COMPOSE.format(version="24.1.0", project=1)
    report = compare(baselines(tmp_path, staging, production, name="compose.yaml"))
    items = {(item.path, item.detail): item for item in report.items}
    secret = "infrastructure.services.web.environment.AWS_SECRET_ACCESS_KEY"
    assert items[(secret, "REUSED")].blocking
    weak = items[(secret, "WEAK")]
    assert weak.source_value is not None and weak.target_value is not None
    assert (weak.kind, weak.severity, weak.source_value.redacted, weak.target_value.redacted) == ("secret", "major", True, True)
    image = items[("infrastructure.services.web.image", "values differ")]
    assert image.source_value is not None and image.target_value is not None
    assert (image.source_value.value, image.target_value.value) == ("getsentry/sentry:24.2.0", "getsentry/sentry:24.1.0")
    dsn = items[("infrastructure.services.web.environment.SENTRY_DSN", "values differ")]
    assert dsn.source_value is not None
    assert dsn.source_value.value == f"https://[REDACTED:{secret}]@o1.ingest.example.com/2"
    assert "sentry@" not in everything_shown(report) and json.dumps("sentry") not in everything_shown(report)


def test_a_secret_volume_only_one_side_has_is_shown_as_a_reference(tmp_path: Path) -> None:
    production = POD.format(tls="api-tls", key="password")
    staging = production.replace("          secret:\n            secretName: api-tls\n", "          configMap:\n            name: api-tls\n")
    report = compare(baselines(tmp_path, staging, production, name="manifests.yaml"))
    base = "infrastructure.apps/v1/Deployment/shop/api.spec.template.spec.volumes[name=tls]"
    assert sorted((item.path, item.kind) for item in report.items) == [(f"{base}.configMap", "added"), (f"{base}.secret", "removed")]
    removed = next(item for item in report.items if item.kind == "removed")
    assert removed.target_value is not None and removed.target_value.value["secretName"] == "api-tls"


def test_ecs_secrets_that_name_their_parameters_are_references_not_reused_secrets(tmp_path: Path) -> None:
    text = "containerDefinitions:\n  - name: api\n    secrets:\n      - {name: DB_PASSWORD, valueFrom: 'arn:aws:ssm:eu-west-1:1:parameter/db'}\n"
    report = compare(baselines(tmp_path, text, text.replace("/db'", "/db-v2'")))
    items = [(item.path, item.kind, item.source_value and item.source_value.value) for item in report.items]
    assert items == [("infrastructure.containerDefinitions[name=api].secrets[name=DB_PASSWORD].valueFrom", "changed", "arn:aws:ssm:eu-west-1:1:parameter/db")]
