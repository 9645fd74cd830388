"""Step 1.3: test data and feature flag refresh, recorded in staging-data-refresh.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_predeploy.core.errors import ArtifactError
from pytest_predeploy.intake.parity import compare_environments, parity_problems
from pytest_predeploy.intake.refresh import read_refresh, refresh_problems, run_data_refresh
from tests.parity_project import write_config


def _setup(tmp_path: Path, staging_flags: str, refresh: dict[str, object] | None) -> object:
    (tmp_path / "s-flags.json").write_text(staging_flags, encoding="utf-8")
    (tmp_path / "p-flags.json").write_text('{"checkout": false}', encoding="utf-8")
    staging: dict[str, object] = {"flags": ["s-flags.json"]}
    if refresh is not None:
        staging["refresh"] = refresh
    return write_config(tmp_path, staging, {"flags": ["p-flags.json"]}, {"required_flags": {"checkout": True}})


def test_refresh_records_each_dataset_with_owner_and_timestamp_and_the_flag_states(tmp_path: Path) -> None:
    (tmp_path / "sync.py").write_text("from pathlib import Path\nPath('synced').write_text('ok')\n", encoding="utf-8")
    refresh: dict[str, object] = {
        "command": "{python} sync.py",
        "owner": "qa@shop",
        "datasets": [{"name": "orders", "owner": "orders-team"}, {"name": "flags", "owner": "release-eng"}],
    }
    config = _setup(tmp_path, '{"checkout": true, "ui": {"dark": false}}', refresh)
    artifacts = tmp_path / "artifacts"
    result = run_data_refresh(config, "staging", "v1.2", artifacts)  # type: ignore[arg-type]
    assert (tmp_path / "synced").read_text() == "ok"  # the command ran in the config's folder
    text = (artifacts / "staging-data-refresh.md").read_text(encoding="utf-8")
    assert "| orders | orders-team | refreshed |" in text and "| flags | release-eng | refreshed |" in text
    assert "| checkout | true | true | ok |" in text and "| ui.dark | false |" in text
    record = read_refresh(artifacts / "staging-data-refresh.md")
    assert record == result and all(d.refreshed_at == result.ended_at for d in record.datasets)
    assert refresh_problems(record) == []


def test_refresh_accepts_a_runner_callable_and_a_failed_command_is_a_guideline_miss(tmp_path: Path) -> None:
    from pytest_predeploy.core.runner import run_command

    config = _setup(
        tmp_path, '{"checkout": true}', {"command": f"{sys.executable} -c 'raise SystemExit(4)'", "owner": "qa", "datasets": [{"name": "orders", "owner": "o"}]}
    )
    calls: list[str] = []

    def runner(argv: list[str], label: str):  # type: ignore[no-untyped-def]
        calls.append(label)
        return run_command(argv, step="data_refresh", label=label, transcript=tmp_path / "t.log", timeout=30, cwd=tmp_path)

    record = run_data_refresh(config, "staging", "v1.2", tmp_path, runner)  # type: ignore[arg-type]
    assert calls == ["staging"]
    assert record.datasets[0].status == "failed" and record.datasets[0].refreshed_at is None
    (problem,) = refresh_problems(record)
    assert "exit 4" in problem and "orders" in problem


def test_missing_refresh_config_and_required_flag_off_are_reported_here_and_in_parity(tmp_path: Path) -> None:
    config = _setup(tmp_path, '{"checkout": false}', None)
    record = run_data_refresh(config, "staging", "v1.2", tmp_path)  # type: ignore[arg-type]
    problems = refresh_problems(record)
    assert problems[0].startswith("no test data / feature flag refresh configured for staging")
    assert "flag checkout is false in staging; the release requires true" in problems[1]
    report = compare_environments(config, "staging", "production", "v1.2")  # type: ignore[arg-type]
    (blocking,) = parity_problems(report)
    assert blocking.startswith("CRITICAL flags.checkout: is false, the release requires true")


def test_reading_a_record_without_its_data_block_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "staging-data-refresh.md"
    path.write_text("# edited by hand\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="staging-data-refresh.md: has no predeploy-refresh record"):
        read_refresh(path)
    with pytest.raises(ArtifactError, match="missing"):
        read_refresh(tmp_path / "absent.md")
