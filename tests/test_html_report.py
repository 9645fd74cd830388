"""The HTML report a release reviewer reads, opened in a real headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.project import GATES, json_report, make_project

PARITY_FAILS_GATE2 = dict(GATES)
PARITY_FAILS_GATE2["test_gate2_rehearsal.py"] = """
    import pytest
    pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

    @pytest.mark.must
    def test_deployed(evidence):
        evidence.figure("api 1.2 s, worker 0.9 s")
        evidence.table("Deploy timings", ["service", "seconds"], [["api", 1.2], ["worker", 0.9]])
        assert False, "worker never became healthy"
"""


def _chromium() -> str:
    """Debian's Chromium. Tests never install system packages: CI installs it before the suite
    (.ci/run, as root); elsewhere this test skips with the command that installs it."""
    found = shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium on PATH: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu) to run the browser test")
    return found


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def test_html_report_shows_gate_summary_in_a_browser(pytester: pytest.Pytester, browser, tmp_path: Path) -> None:
    root = make_project(pytester, gates=PARITY_FAILS_GATE2)
    result = pytester.runpytest_subprocess("--predeploy-release=v1.0")
    assert result.ret == 1
    report = root / ".artifacts/pre-deployment/pytest-report.html"
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    page.wait_for_selector("#predeploy-gate-table")
    assert page.title() == "Pre-deployment readiness v1.0"
    statuses = page.eval_on_selector_all(
        "#predeploy-gate-table tr.predeploy-gate", "rows => rows.map(r => [r.dataset.gate, r.querySelector('.predeploy-status').innerText])"
    )
    assert statuses == [["1", "PASSED"], ["2", "FAILED"], ["3", "HALTED"], ["10", "HALTED"]]
    assert "NO-GO: Gate 2 (Deployment Rehearsal) failed" in page.inner_text("#predeploy-verdict")
    environment = page.inner_text("#environment")
    for key in ("Release", "Previous release", "Commit", "Config digest", "Environment"):
        assert key in environment
    # Rows are in gate order, not failures first.
    rows = page.eval_on_selector_all("#results-table tbody.results-table-row td.col-testId", "cells => cells.map(c => c.innerText)")
    assert [r.split("::")[0] for r in rows][:3] == ["gates/test_gate1_intake.py"] * 2 + ["gates/test_gate2_rehearsal.py"]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0
    assert errors == []
    tests = {t["nodeid"].split("::")[1]: t for t in json_report(root)["tests"]}
    assert tests["test_deployed"]["metadata"]["gate"] == 2
