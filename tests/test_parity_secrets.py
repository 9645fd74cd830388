"""Secrets in parity: the .env parser, secret names people use, reuse of any scalar, and
redaction of secret values at every depth of what the report and the command print."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from pytest_predeploy.core.errors import ConfigError
from pytest_predeploy.intake.parity import (
    ParityReport,
    compare_environments,
    parity_problems,
    summary_text,
)
from pytest_predeploy.intake.secrets import DEFAULT_SECRET_NAMES, parse_env_text, read_env_file
from tests.parity_project import write_config

DATA = Path(__file__).resolve().parent / "data" / "parity"


def compare(config: object) -> ParityReport:
    return compare_environments(config, "staging", "production", "v1.2")  # type: ignore[arg-type]


def test_env_file_parses_to_the_keys_and_values_python_dotenv_reads() -> None:
    path = DATA / "forms.env"
    expected = dotenv_values(path, interpolate=False)
    assert None not in expected.values()
    assert read_env_file(path) == expected
    assert read_env_file(path)["COMMENTED"] == "Stg-Pw-1234" and "AFTER_MULTI" in expected


def test_quoted_value_with_a_comment_hides_no_later_key_and_reuse_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.env").write_text('DATABASE_PASSWORD="Stg-Pw-1234" # rotated\nPAYMENTS_API_KEY=pk-shared-5521\nLAST="x"\n', encoding="utf-8")
    (tmp_path / "p.env").write_text('DATABASE_PASSWORD="Prd-Pw-9876" # rotated\nPAYMENTS_API_KEY=pk-shared-5521\nLAST="y"\n', encoding="utf-8")
    report = compare(write_config(tmp_path, {"secrets": {"file": "s.env"}}, {"secrets": {"file": "p.env"}}))
    statuses = {check.name: check.status for check in report.secrets}
    assert statuses == {"DATABASE_PASSWORD": "present", "PAYMENTS_API_KEY": "REUSED", "LAST": "present"}
    assert not report.passed
    print(summary_text(report))
    shown = report.model_dump_json() + capsys.readouterr().out + "\n".join(parity_problems(report))
    for value in ("Stg-Pw-1234", "Prd-Pw-9876", "pk-shared-5521"):
        assert value not in shown


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ('A=1\nB="unclosed-secret-value\nC=3\n', 2, "expected NAME=value"),
        ("A=1\nsecret-bare-value\n", 2, "a name without '='"),
        ("A=1\n\nA=secret-again-value\n", 3, "A is defined twice (first on line 1)"),
    ],
)
def test_env_lines_that_cannot_be_read_are_errors_naming_the_line_never_the_value(text: str, line: int, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_text(text, "x.env")
    message = str(info.value)
    assert message.startswith(f"x.env:{line}: ") and expected in message
    assert "secret-" not in message


CANARY = "Canary-Nested-8c2e5a91"


def shown(report: ParityReport, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything parity writes or prints about ``report``."""
    print(summary_text(report))
    return report.model_dump_json() + capsys.readouterr().out + "\n".join(parity_problems(report))


def config_for(tmp_path: Path, staging: str, production: str, parity: dict[str, object] | None = None) -> object:
    (tmp_path / "s.yaml").write_text(staging, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(production, encoding="utf-8")
    return write_config(tmp_path, {"configuration": ["s.yaml"]}, {"configuration": ["p.yaml"]}, parity)


NESTED = {
    "nested add": (f"db: {{replica: {{host: r1, password: {CANARY}}}}}\n", "db: {}\n", "configuration.db.replica"),
    "keyed list add": (
        f"users:\n  - {{name: bob, role: ro}}\n  - {{name: alice, password: {CANARY}}}\n",
        "users:\n  - {name: bob, role: ro}\n",
        "configuration.users[name=alice]",
    ),
    "parent type change": (f"smtp:\n  auth: {{user: mailer, password: {CANARY}}}\n", "smtp:\n  auth: null\n", "configuration.smtp.auth"),
    "grandparent type change": (f"smtp:\n  auth: {{user: mailer, password: {CANARY}}}\n", "smtp: off\n", "configuration.smtp"),
    "removal": ("legacy: {}\n", f"legacy:\n  billing: {{endpoint: https://b, apiToken: {CANARY}}}\n", "configuration.legacy.billing"),
    "list of mappings by position": (f"jobs:\n  - run: x\n    env: {{DB_PASSWORD: {CANARY}}}\n", "jobs: []\n", "configuration.jobs[0]"),
    "same value under an innocent key": (
        f"db: {{password: {CANARY}, url: 'postgres://u:{CANARY}@db/app'}}\n",
        "db: {password: other-Pw-123, url: 'postgres://u:other-Pw-123@db/app'}\n",
        "configuration.db.url",
    ),
}


@pytest.mark.parametrize("case", sorted(NESTED))
def test_a_secret_nested_under_an_added_removed_or_retyped_parent_is_never_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    staging, production, path = NESTED[case]
    report = compare(config_for(tmp_path, staging, production))
    assert path in {item.path for item in report.items}
    assert CANARY not in shown(report, capsys)


def test_camel_kebab_and_upper_case_secret_names_are_redacted_and_their_reuse_is_critical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["adminPassword", "apiKey", "bearerToken", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "client-secret", "privateKey", "dbPasswd"]
    staging = "".join(f"{name}: same-{i}-{CANARY}\n" for i, name in enumerate(names)) + f"secrets: {{anything: in-a-secrets-map-{CANARY}}}\n"
    production = staging + "password_min_length: 12\ntoken_ttl: 3600\nAWS_ACCESS_KEY_ID: AKIA-not-secret\n"
    staging += "password_min_length: 12\ntoken_ttl: 3600\nAWS_ACCESS_KEY_ID: AKIA-not-secret\n"
    report = compare(config_for(tmp_path, staging, production))
    reused = {item.path for item in report.items if item.detail == "REUSED"}
    assert reused == {f"configuration.{name}" for name in names} | {"configuration.secrets.anything"}
    assert all(item.blocking for item in report.items if item.detail == "REUSED")
    assert CANARY not in shown(report, capsys)


def test_changed_secret_named_values_are_redacted_and_names_that_only_mention_a_secret_are_not(tmp_path: Path) -> None:
    staging = f"adminPassword: {CANARY}\ngrafana: {{admin: {{existingSecret: grafana-a}}}}\npassword_min_length: 12\n"
    production = "adminPassword: other-value-1\ngrafana: {admin: {existingSecret: grafana-b}}\npassword_min_length: 16\n"
    items = {item.path: item for item in compare(config_for(tmp_path, staging, production)).items}
    admin = items["configuration.adminPassword"].source_value
    length = items["configuration.password_min_length"].source_value
    existing = items["configuration.grafana.admin.existingSecret"].source_value
    assert admin is not None and admin.redacted
    assert length is not None and length.value == 12
    assert existing is not None and existing.value == "grafana-a"


def test_secret_name_patterns_accept_additions_and_exceptions(tmp_path: Path) -> None:
    text = "license_blob: lic-123456\nsession: {cookie_password: cookie-123456}\n"
    report = compare(config_for(tmp_path, text, text))
    assert [(item.path, item.detail) for item in report.items] == [("configuration.session.cookie_password", "REUSED")]
    parity: dict[str, object] = {"secret_names": [*DEFAULT_SECRET_NAMES, "blob"], "not_secret_paths": ["configuration.session.cookie_password"]}
    report = compare(config_for(tmp_path, text, text, parity))
    assert [(item.path, item.detail) for item in report.items] == [("configuration.license_blob", "REUSED")]


def test_equal_non_string_secrets_are_reused_and_a_secret_empty_on_both_sides_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.env").write_text("EMPTY_TOKEN=\nSET=a-1234\n", encoding="utf-8")
    (tmp_path / "p.env").write_text("EMPTY_TOKEN=\nSET=b-1234\n", encoding="utf-8")
    text = "payments: {pin: 987654321, db_password: 20260229}\n"
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    config = write_config(
        tmp_path,
        {"configuration": ["s.yaml"], "secrets": {"file": "s.env"}},
        {"configuration": ["p.yaml"], "secrets": {"file": "p.env"}},
        {"secret_paths": ["**.pin"]},
    )
    report = compare(config)
    items = {item.path: item for item in report.items if item.detail != "WEAK"}
    assert items["configuration.payments.pin"].detail == "REUSED" and items["configuration.payments.pin"].blocking
    assert items["configuration.payments.db_password"].detail == "REUSED"
    # Digits only: a PIN or a date is a weak credential besides.
    weak = sorted(item.path for item in report.items if item.detail == "WEAK")
    assert weak == ["configuration.payments.db_password", "configuration.payments.pin", "secrets.SET"]
    assert {check.name: check.status for check in report.secrets} == {"EMPTY_TOKEN": "missing-in-staging-and-production", "SET": "present"}
    assert items["secrets.EMPTY_TOKEN"].severity == "major"
    out = shown(report, capsys)
    assert "987654321" not in out and "20260229" not in out


def _helm(tmp_path: Path, staging: str) -> object:
    (tmp_path / "staging.yaml").write_text(staging, encoding="utf-8")
    production = tmp_path / "production.yaml"
    production.write_text((DATA / "helm" / "production.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return write_config(tmp_path, {"configuration": ["staging.yaml"]}, {"configuration": ["production.yaml"]})


def test_helm_values_with_the_same_grafana_admin_password_are_reused_and_critical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = compare(_helm(tmp_path, (DATA / "helm" / "staging.yaml").read_text(encoding="utf-8")))
    items = {item.path: item for item in report.items}
    reused = items["configuration.grafana.adminPassword"]
    assert (reused.detail, reused.severity, reused.blocking) == ("REUSED", "critical", True)
    assert "configuration.grafana.admin.existingSecret" not in items and "configuration.grafana.admin.passwordKey" not in items
    assert not report.passed
    assert "prom-operator" not in shown(report, capsys)


def test_helm_values_without_the_admin_password_in_staging_never_print_production_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging = (DATA / "helm" / "staging.yaml").read_text(encoding="utf-8").replace("  adminPassword: prom-operator\n", "")
    for text in (staging, staging.replace("grafana:\n", "grafana_disabled:\n")):
        report = compare(_helm(tmp_path, text))
        assert report.items and "prom-operator" not in shown(report, capsys)


def test_compose_environment_lists_redact_secret_assignments_and_find_their_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for env in ("staging", "production"):
        (tmp_path / f"{env}.yaml").write_text((DATA / "compose" / f"{env}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    report = compare(write_config(tmp_path, {"infrastructure": ["staging.yaml"]}, {"infrastructure": ["production.yaml"]}))
    reused = sorted(item.path for item in report.items if item.detail == "REUSED")
    assert reused == [f"infrastructure.{where}.environment[3]" for where in ("services.web", "services.worker", "x-sentry-defaults")]
    out = shown(report, capsys)
    assert "AWS_SECRET_KEY=[REDACTED]" in out and "SNUBA=http://snuba-api:1218" in out
    for value in ("Prd-Aws-5c1f0e7a2b9d", "Stg-Aws-3e8b6d0f4a1c", "Shared-Db-77ad0c4e91"):
        assert value not in out


def test_a_kubernetes_secret_s_data_is_secret_whatever_its_keys_are_called(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def secret(name: str, data: str) -> str:
        return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: shop}}\ntype: Opaque\ndata: {{{data}}}\n"

    staging = (
        secret("db", "DATABASE_URL: c3RnLWRzbi0xMjM0NTY=, tls.crt: c2hhcmVkLWNlcnQtOTg3Ng==")
        + "---\n"
        + secret("extra", "token.json: ZXh0cmEtdmFsdWUtNDQ1NQ==")
    )
    production = secret("db", "DATABASE_URL: cHJkLWRzbi02NTQzMjE=, tls.crt: c2hhcmVkLWNlcnQtOTg3Ng==")
    report = compare(config_for(tmp_path, staging, production))
    items = {item.path: item for item in report.items}
    database_url = items["configuration.v1/Secret/shop/db.data.DATABASE_URL"].source_value
    assert database_url is not None and database_url.redacted
    assert items['configuration.v1/Secret/shop/db.data["tls.crt"]'].detail == "REUSED"
    assert items["configuration.v1/Secret/shop/extra"].kind == "added"
    out = shown(report, capsys)
    for value in ("c3RnLWRzbi0xMjM0NTY=", "cHJkLWRzbi02NTQzMjE=", "c2hhcmVkLWNlcnQtOTg3Ng==", "ZXh0cmEtdmFsdWUtNDQ1NQ=="):
        assert value not in out
    assert "v1/Secret/shop/db" in out


def test_environment_variables_named_like_secrets_hide_their_values_and_their_reuse_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def deployment(password: str, token: str, extra: str) -> str:
        return (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n"
            "        - name: api\n          env:\n"
            f"            - {{name: DB_PASSWORD, value: {password}}}\n"
            f"            - {{name: PAYMENTS_TOKEN, value: {token}}}\n"
            "            - {name: LOG_LEVEL, value: info}\n"
            "            - name: SIGNING_KEY\n              valueFrom: {secretKeyRef: {name: api-keys, key: signing}}\n"
            f"{extra}"
        )

    sidecar = f"        - name: sidecar\n          env: [{{name: SIDECAR_API_KEY, value: side-{CANARY}}}]\n"
    staging = deployment(f"stg-{CANARY}", f"shared-{CANARY}", sidecar)
    production = deployment(f"prd-{CANARY}", f"shared-{CANARY}", "")
    report = compare(config_for(tmp_path, staging, production))
    items = {item.path: item for item in report.items}
    base = "configuration.apps/v1/Deployment/shop/api.spec.template.spec.containers"
    db_password = items[f"{base}[name=api].env[name=DB_PASSWORD].value"].source_value
    assert db_password is not None and db_password.redacted
    assert items[f"{base}[name=api].env[name=PAYMENTS_TOKEN].value"].detail == "REUSED"
    assert items[f"{base}[name=sidecar]"].kind == "added"
    assert {path for path, item in items.items() if item.detail == "REUSED"} == {f"{base}[name=api].env[name=PAYMENTS_TOKEN].value"}
    assert CANARY not in shown(report, capsys)


def test_a_weak_secret_source_value_is_weak_and_still_redacted_wherever_it_occurs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The run checks everything it writes for its secret sources' values as substrings, so
    # parity redacts them the same way, even where a tree's weak secret is redacted on tokens.
    for env, tag in (("s", "24.2.0"), ("p", "24.1.0")):
        (tmp_path / f"{env}.env").write_text("RELAY_TOKEN=sentry\n", encoding="utf-8")
        (tmp_path / f"{env}.yaml").write_text(f"web: {{image: 'getsentry/sentry:{tag}'}}\n", encoding="utf-8")
    config = write_config(tmp_path, {"configuration": ["s.yaml"], "secrets": {"file": "s.env"}}, {"configuration": ["p.yaml"], "secrets": {"file": "p.env"}})
    report = compare(config)
    items = {(item.path, item.detail): item for item in report.items}
    assert items[("secrets.RELAY_TOKEN", "WEAK")].severity == "major" and items[("secrets.RELAY_TOKEN", "REUSED")].blocking
    image = items[("configuration.web.image", "values differ")].source_value
    assert image is not None and image.value == "get[REDACTED:production/RELAY_TOKEN]/[REDACTED:production/RELAY_TOKEN]:24.2.0"
    assert "sentry" not in shown(report, capsys)
