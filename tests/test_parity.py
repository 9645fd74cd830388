"""Staging parity on real files: every kind of difference, every rule, secrets, malformed inputs."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from pytest_predeploy.config import load_config
from pytest_predeploy.core.errors import ConfigError, StepError
from pytest_predeploy.intake.parity import (
    DriftItem,
    ParityReport,
    compare_environments,
    compile_glob,
    parity_problems,
    parse_yaml_fast,
    summary_text,
)
from tests.parity_project import baselines, write_config

ROOT = Path(__file__).resolve().parent.parent


def by_path(report: ParityReport) -> dict[str, DriftItem]:
    return {item.path: item for item in report.items}


def compare(config: object, **kwargs: object) -> ParityReport:
    return compare_environments(config, "staging", "production", "v1.2", **kwargs)  # type: ignore[arg-type]


def test_identical_environments_report_no_drift(tmp_path: Path) -> None:
    text = "region: eu\nservices: [{name: api, replicas: 2}]\n"
    report = compare(baselines(tmp_path, text, text))
    assert report.items == [] and report.passed and report.summary.blocking == 0


def test_each_kind_of_difference_is_reported_with_both_values(tmp_path: Path) -> None:
    staging = "same: 1\nchanged: 2\nflag: 1\nratio: 1\nonly_staging: x\nnull_here: null\n"
    production = "same: 1\nchanged: 3\nflag: true\nratio: 1.0\nonly_production: y\n"
    items = by_path(compare(baselines(tmp_path, staging, production)))
    assert set(items) == {f"infrastructure.{k}" for k in ("changed", "flag", "ratio", "only_staging", "only_production", "null_here")}
    changed = items["infrastructure.changed"]
    assert changed.source_value is not None and changed.target_value is not None
    assert (changed.kind, changed.source_value.value, changed.target_value.value) == ("changed", 2, 3)
    assert items["infrastructure.flag"].kind == "type-changed" and items["infrastructure.flag"].detail.startswith("int -> bool")
    assert items["infrastructure.ratio"].kind == "type-changed"
    assert items["infrastructure.only_staging"].kind == "added" and items["infrastructure.only_staging"].target_value is None
    assert items["infrastructure.only_production"].kind == "removed" and items["infrastructure.only_production"].source_value is None
    # null is a value, not an absence: the item says which side is missing and which is null.
    null = items["infrastructure.null_here"]
    assert null.kind == "added" and null.source_value is not None and null.source_value.type == "null" and null.target_value is None


def test_null_on_both_sides_and_nan_on_both_sides_are_equal(tmp_path: Path) -> None:
    text = "a: null\nb: .nan\n"
    assert compare(baselines(tmp_path, text, text)).items == []


def test_keys_with_dots_and_unicode_keys_are_addressed_exactly(tmp_path: Path) -> None:
    staging = '{"log.level": "debug", "log": {"level": "info"}, "größe": 1, "名前": "a"}'
    production = '{"log.level": "info", "log": {"level": "info"}, "größe": 2, "名前": "b"}'
    parity = {"rules": [{"path": 'configuration["log.level"]', "severity": "critical"}]}
    report = compare(baselines(tmp_path, staging, production, "app.json", parity, section="configuration"))
    items = by_path(report)
    assert set(items) == {'configuration["log.level"]', "configuration.größe", "configuration.名前"}
    assert items['configuration["log.level"]'].severity == "critical"
    assert items["configuration.größe"].severity == "major"


def test_lists_of_scalars_compare_as_whole_values(tmp_path: Path) -> None:
    report = compare(baselines(tmp_path, "origins: [a, b]\nsame: [1, 2]\n", "origins: [b, a]\nsame: [1, 2]\n"))
    (item,) = report.items
    assert item.path == "infrastructure.origins" and item.kind == "changed"
    assert item.source_value is not None and item.target_value is not None
    assert item.source_value.value == ["a", "b"] and item.target_value.value == ["b", "a"]


def test_lists_of_mappings_compare_by_configured_key(tmp_path: Path) -> None:
    staging = "services:\n  - {name: worker, replicas: 1}\n  - {name: api, replicas: 1}\n  - {name: extra}\nports:\n  - {id: 7, port: 80}\n"
    production = "services:\n  - {name: api, replicas: 3}\n  - {name: worker, replicas: 1}\n  - {name: gone}\nports:\n  - {id: 7, port: 81}\n"
    items = by_path(compare(baselines(tmp_path, staging, production)))
    assert set(items) == {
        "infrastructure.services[name=api].replicas",
        "infrastructure.services[name=extra]",
        "infrastructure.services[name=gone]",
        "infrastructure.ports[id=7].port",
    }
    assert items["infrastructure.services[name=extra]"].kind == "added"
    assert items["infrastructure.services[name=gone]"].kind == "removed"


def test_list_key_rule_picks_the_key_and_other_lists_align_by_content(tmp_path: Path) -> None:
    staging = "routes:\n  - {path: /a, timeout: 1}\n  - {path: /b, timeout: 2}\nsteps:\n  - {run: x}\n  - {run: y}\n"
    production = "routes:\n  - {path: /b, timeout: 2}\n  - {path: /a, timeout: 5}\nsteps:\n  - {run: y}\n"
    parity = {"list_keys": [{"path": "infrastructure.routes", "key": "path"}]}
    items = by_path(compare(baselines(tmp_path, staging, production, parity=parity)))
    # steps: {run: y} is on both sides, so {run: x} is the one added element (at staging's index).
    assert set(items) == {"infrastructure.routes[path=/a].timeout", "infrastructure.steps[0]"}
    assert items["infrastructure.steps[0]"].kind == "added"


def test_severity_rules_first_match_wins_and_default_applies_elsewhere(tmp_path: Path) -> None:
    parity = {
        "default_severity": "minor",
        "rules": [
            {"path": "infrastructure.db.engine", "severity": "critical", "remediation": "restore postgres"},
            {"path": "infrastructure.db.*", "severity": "major"},
            {"path": "**.engine", "severity": "info"},
        ],
    }
    config = baselines(
        tmp_path, "db: {engine: mysql, pool: 1}\ncache: {engine: a}\nx: 1\n", "db: {engine: pg, pool: 2}\ncache: {engine: b}\nx: 2\n", parity=parity
    )
    report = compare(config)
    items = by_path(report)
    assert items["infrastructure.db.engine"].severity == "critical" and items["infrastructure.db.engine"].remediation == "restore postgres"
    assert items["infrastructure.db.pool"].severity == "major"
    assert items["infrastructure.cache.engine"].severity == "info"
    assert items["infrastructure.x"].severity == "minor"
    assert not report.passed and report.summary.critical == 1
    assert parity_problems(report) == ['CRITICAL infrastructure.db.engine: changed: "mysql" vs "pg" -> restore postgres']


def test_ignore_rule_never_hides_a_key_staging_lacks_unless_it_says_removed(tmp_path: Path) -> None:
    staging = "web: {hostname: s.example}\n"
    production = "web: {hostname: p.example}\ndb: {hostname: db.example}\n"
    parity = {"rules": [{"path": "**", "severity": "critical"}], "ignore": [{"path": "**.hostname", "reason": "per-environment names"}]}
    report = compare(baselines(tmp_path, staging, production, parity=parity))
    items = by_path(report)
    assert items["infrastructure.web.hostname"].status == "ignored" and "per-environment names" in items["infrastructure.web.hostname"].remediation
    missing = items["infrastructure.db"]
    assert missing.kind == "removed" and missing.status == "drift" and missing.severity == "critical"
    assert not report.passed


def test_ignore_rule_that_lists_removed_accepts_a_missing_key_explicitly(tmp_path: Path) -> None:
    parity = {"ignore": [{"path": "infrastructure.debug_only", "reason": "production-only tracing", "kinds": ["removed"]}]}
    report = compare(baselines(tmp_path, "a: 1\n", "a: 1\ndebug_only: true\n", parity=parity))
    (item,) = report.items
    assert item.status == "ignored" and item.kind == "removed" and report.summary.ignored == 1


def test_unexpired_waiver_waives_and_expired_waiver_turns_drift_back_on(tmp_path: Path) -> None:
    parity = {
        "rules": [{"path": "**", "severity": "critical"}],
        "waivers": [
            {"id": "W-1", "path": "infrastructure.a", "owner": "sre", "justification": "migration", "expires_at": "2030-01-01T00:00:00Z"},
            {"id": "W-2", "path": "infrastructure.b", "owner": "dba", "justification": "old", "expires_at": "2020-01-01T00:00:00Z"},
        ],
    }
    report = compare(baselines(tmp_path, "a: 1\nb: 1\n", "a: 2\nb: 2\n", parity=parity), now=datetime(2026, 1, 1, tzinfo=UTC))
    items = by_path(report)
    assert items["infrastructure.a"].status == "waived" and items["infrastructure.a"].waiver == "W-1"
    assert items["infrastructure.b"].status == "waiver-expired" and items["infrastructure.b"].waiver == "W-2"
    assert report.summary.waived == 1 and report.summary.expired_waivers == 1 and report.summary.blocking == 1
    (problem,) = parity_problems(report)
    assert "infrastructure.b" in problem and "W-2" in problem and "expired" in problem


def test_inputs_of_every_format_merge_in_order_and_are_listed_with_sha256(tmp_path: Path) -> None:
    files = {
        "base.yaml": "http: {timeout: 30, retries: 2}\nregion: eu\n",
        "override.json": '{"http": {"timeout": 60}}',
        "extra.toml": '[tls]\nmin_version = "1.2"\n',
        "app.env": "LOG_LEVEL=info\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    names = list(files)
    (tmp_path / "prod.yaml").write_text("http: {timeout: 60, retries: 2}\nregion: eu\ntls: {min_version: '1.3'}\nLOG_LEVEL: info\n", encoding="utf-8")
    config = write_config(tmp_path, {"configuration": names}, {"configuration": ["prod.yaml"]})
    report = compare(config)
    assert [item.path for item in report.items] == ["configuration.tls.min_version"]
    recorded = {Path(i.source).name: i.sha256 for i in report.inputs}
    for name in [*names, "prod.yaml"]:
        assert recorded[name] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_capture_command_output_is_compared_as_live_state(tmp_path: Path) -> None:
    (tmp_path / "declared.yaml").write_text("replicas: 2\nimage: v1\n", encoding="utf-8")
    (tmp_path / "live.py").write_text("import json\nprint(json.dumps({'replicas': 5}))\n", encoding="utf-8")
    config = write_config(
        tmp_path,
        {"infrastructure": ["declared.yaml"], "capture": {"command": "{python} live.py", "section": "infrastructure"}},
        {"infrastructure": ["declared.yaml"]},
    )
    report = compare(config, transcripts=tmp_path / "transcripts")
    (item,) = report.items
    assert item.source_value is not None and item.target_value is not None
    assert item.path == "infrastructure.replicas" and item.source_value.value == 5 and item.target_value.value == 2
    assert any(i.source == "capture: {python} live.py" and i.sha256 for i in report.inputs)
    assert (tmp_path / "transcripts" / "parity-capture-staging.log").is_file()
    # The plugin may hand over its own capture (run through its runner).
    report = compare(config, capture=lambda env, command: b"replicas: 2\n")
    assert report.items == []


def test_failing_capture_command_is_an_error_naming_the_environment(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("a: 1\n", encoding="utf-8")
    config = write_config(
        tmp_path, {"infrastructure": ["d.yaml"], "capture": {"command": f"{sys.executable} -c 'raise SystemExit(3)'"}}, {"infrastructure": ["d.yaml"]}
    )
    with pytest.raises(StepError, match=r"environment 'staging': capture command .* \(exit 3\)$"):
        compare(config)


CANARIES = {
    "shared": "canary-REUSED-7f3a9c1e5b",
    "stg": "canary-stg-only-2d8e4a",
    "prd": "canary-prd-only-9b1c6f",
    "a": "canary-stg-a-5e0d3b",
    "b": "canary-prd-b-1a7c4e",
}


def test_secrets_are_compared_by_fingerprint_and_no_value_or_hash_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = CANARIES
    (tmp_path / "staging.env").write_text(f"DB_PASSWORD={c['shared']}\nSTAGING_ONLY={c['stg']}\nAPI_KEY={c['a']}\n", encoding="utf-8")
    (tmp_path / "production.env").write_text(f"DB_PASSWORD={c['shared']}\nPROD_ONLY={c['prd']}\nAPI_KEY={c['b']}\n", encoding="utf-8")
    config = write_config(tmp_path, {"secrets": {"file": "staging.env"}}, {"secrets": {"file": "production.env"}})
    report = compare(config)
    statuses = {check.name: check.status for check in report.secrets}
    assert statuses == {"API_KEY": "present", "DB_PASSWORD": "REUSED", "PROD_ONLY": "missing-in-staging", "STAGING_ONLY": "missing-in-production"}
    assert report.summary.secrets_reused == 1 and not report.passed
    (problem,) = parity_problems(report)
    assert problem.startswith("CRITICAL secrets.DB_PASSWORD: REUSED")
    print(summary_text(report))
    written = report.model_dump_json() + capsys.readouterr().out + "\n".join(parity_problems(report))
    for value in c.values():
        assert value not in written
        assert hashlib.sha256(value.encode()).hexdigest() not in written
        assert f'"length": {len(value)}' not in written


def test_secret_valued_configuration_keys_are_redacted_and_reuse_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "s.env").write_text("KNOWN=hunter2-known-secret\n", encoding="utf-8")
    (tmp_path / "p.env").write_text("KNOWN=other-known-secret\n", encoding="utf-8")
    staging = "db: {password: same-pass-123, url: 'postgres://u:hunter2-known-secret@db'}\nsmtp_password: one-1234\n"
    production = "db: {password: same-pass-123, url: 'postgres://u:x@db'}\nsmtp_password: two-5678\n"
    (tmp_path / "s.yaml").write_text(staging, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(production, encoding="utf-8")
    config = write_config(tmp_path, {"configuration": ["s.yaml"], "secrets": {"file": "s.env"}}, {"configuration": ["p.yaml"], "secrets": {"file": "p.env"}})
    report = compare(config)
    items = by_path(report)
    assert items["configuration.db.password"].detail == "REUSED" and items["configuration.db.password"].blocking
    smtp, url = items["configuration.smtp_password"].source_value, items["configuration.db.url"].source_value
    assert smtp is not None and smtp.redacted and smtp.value is None
    assert url is not None and "[REDACTED:" in url.value
    dumped = report.model_dump_json()
    for value in ("same-pass-123", "one-1234", "two-5678", "hunter2-known-secret"):
        assert value not in dumped


def test_required_flag_off_in_staging_is_critical_drift_and_on_is_expected(tmp_path: Path) -> None:
    parity = {"required_flags": {"new-checkout": True, "search.v2": True, "mode": "fast"}}
    staging = '{"new-checkout": true, "search": {"v2": false}}'
    production = '{"new-checkout": false, "search": {"v2": false}}'
    report = compare(baselines(tmp_path, staging, production, "flags.json", parity, section="flags"))
    items = by_path(report)
    assert items["flags.new-checkout"].status == "ignored"
    assert items["flags.search.v2"].kind == "required-flag" and items["flags.search.v2"].blocking
    assert items["flags.mode"].detail == "missing in the source" and items["flags.mode"].blocking
    assert len(parity_problems(report)) == 2


MALFORMED = {
    "bad.yaml": (b"a: [1, 2\nb: 3\n", "invalid YAML"),
    "dup.yaml": (b"a: 1\nb: secret-dup-value\na: 2\n", "duplicate key 'a'"),
    "dup.json": (b'{"a": "secret-json-value", "a": 2}', "duplicate key 'a'"),
    "blob.yaml": (b"a: \x00\x01\x02secret-binary-value", "binary file"),
    "latin.yaml": (b"a: caf\xe9-secret-latin-value\n", "not UTF-8"),
    "list.yaml": (b"- secret-list-value\n", "expected a mapping at the top level"),
    "huge.yaml": (b"a: " + b"x" * (10 * 1024 * 1024) + b"\n", "longer than"),
    "huge.json": (b'{"a": "' + b"y" * (10 * 1024 * 1024) + b'"}', "longer than"),
    "bad.toml": (b"a = 'secret-toml-value\n", "invalid TOML"),
    "bad.env": (b"secret-env-value\n", "expected NAME=value"),
    "alias.yaml": (b"a: &x [*x]\n", "alias that contains itself"),
    "tag.yaml": (b"a: !vault secret-tag-value\n", "cannot be read"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_an_error_naming_the_file_without_echoing_values(tmp_path: Path, name: str) -> None:
    data, expected = MALFORMED[name]
    (tmp_path / name).write_bytes(data)
    (tmp_path / "ok.yaml").write_text("a: 1\n", encoding="utf-8")
    config = write_config(tmp_path, {"infrastructure": [name]}, {"infrastructure": ["ok.yaml"]})
    with pytest.raises(ConfigError) as info:
        compare(config)
    message = str(info.value)
    assert name in message and expected in message
    assert "secret-" not in message and "xxxxxxxx" not in message and "yyyyyyyy" not in message
    assert len(message) < 400


def test_unknown_format_and_bad_globs_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[x]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a\.ini: unknown format"):
        compare(write_config(tmp_path, {"infrastructure": ["a.ini"]}, {"infrastructure": ["a.ini"]}))
    with pytest.raises(ConfigError, match=r"parity\.rules\.0\.path.*unclosed \["):
        write_config(tmp_path, {}, {}, {"rules": [{"path": "a[b", "severity": "major"}]})


def test_environment_that_declares_nothing_cannot_be_compared(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="environments.production: declares nothing to compare"):
        compare(write_config(tmp_path, {"infrastructure": ["a.yaml"]}, {}))


def test_fast_loader_reads_what_pyyaml_safe_loader_reads() -> None:
    text = """
base: &base {x: 1, y: [a, b]}
merged: {<<: *base, y: override}
ints: [0o17, 0x1f, 1_000, -3, +4, 017]
floats: [1.5, .inf, -.inf, 1e3]
bools: [yes, No, on, OFF, true]
nulls: [~, null, ""]
when: 2026-11-26T10:00:00Z
day: 2026-11-26
blob: !!binary aGVsbG8=
quoted: "123"
multi: |
  line one
  line two
"""
    assert parse_yaml_fast(text, "t.yaml") == yaml.safe_load(text)


def test_globs_match_whole_segments_and_double_star_matches_any_depth() -> None:
    sep = "\x1f"
    assert compile_glob("a.*.c").fullmatch(sep.join(["a", "b", "c"]))
    assert not compile_glob("a.*.c").fullmatch(sep.join(["a", "b", "x", "c"]))
    assert compile_glob("a.**.c").fullmatch(sep.join(["a", "c"]))
    assert compile_glob("a.**.c").fullmatch(sep.join(["a", "b", "x", "c"]))
    assert compile_glob("**.c").fullmatch("c") and compile_glob("**").fullmatch(sep.join(["x", "y"]))
    assert compile_glob('a["b.c"]').fullmatch(sep.join(["a", "b.c"]))
    assert not compile_glob("a.b.c").fullmatch(sep.join(["a", "b.c"]))
    assert compile_glob("s[*].r").fullmatch(sep.join(["s", "[name=api]", "r"]))


def test_demo_baselines_pass_with_expected_differences_and_one_waived_minor_drift() -> None:
    config = load_config(ROOT / "predeploy.yaml")
    report = compare(config)
    assert report.passed and report.summary.critical == 0
    waived = [item for item in report.items if item.status == "waived"]
    assert [(i.path, i.severity) for i in waived] == [("configuration.logging.level", "minor")]
    ignored = {item.path for item in report.items if item.status == "ignored"}
    assert "infrastructure.services[name=api].replicas" in ignored and "infrastructure.services[name=api].hostname" in ignored
    assert {check.status for check in report.secrets} == {"present"}
    secrets = config.secret_values()
    dumped = report.model_dump_json()
    assert secrets and not any(value in dumped for value in secrets.values())
    json.loads(dumped)
