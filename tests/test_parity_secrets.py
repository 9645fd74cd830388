"""Secrets in parity: the .env parser, secret names people use, reuse of any scalar, and
redaction of secret values at every depth of what the report and the command print."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from pytest_predeploy.errors import ConfigError
from pytest_predeploy.parity import ParityReport, compare_environments, parity_problems, summary_text
from pytest_predeploy.secrets import parse_env_text, read_env_file
from tests.test_parity_helpers import write_config

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
