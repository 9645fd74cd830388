"""The HTML report a release reviewer reads, opened in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.harness.gates import ExitStatus
from tests.browser import browser  # noqa: F401 (the module-scoped Chromium fixture)
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


WITH_GATE4 = dict(GATES)
WITH_GATE4["test_gate4_readiness.py"] = """
    import pytest
    pytestmark = pytest.mark.gate(4, "Readiness Approval")

    @pytest.mark.must
    def test_signed_off():
        pass
"""


def _top_of_page(browser, report: Path, shot: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Open the report as a reviewer does, screenshot the first screen, and say what is on top."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    page.wait_for_selector("#results-table tbody.results-table-row")
    page.screenshot(path=str(shot))  # the first screen only: what the reviewer sees before scrolling
    assert shot.stat().st_size > 0 and errors == []
    box = {
        name: page.locator(selector).bounding_box()
        for name, selector in (("banner", "#predeploy-banner"), ("title", "#title"), ("results", "#results-table"), ("environment", "#environment"))
    }
    assert all(box.values())
    # The decision first (whole, in the first screen), the environment table after the tests.
    assert page.eval_on_selector("body", "b => b.firstElementChild.id") == "predeploy-banner"
    assert box["banner"]["y"] < box["title"]["y"] < box["results"]["y"] < box["environment"]["y"]  # type: ignore[index]
    assert box["banner"]["y"] + box["banner"]["height"] <= 720  # type: ignore[index]
    return {
        "verdict": page.inner_text("#predeploy-banner-verdict"),
        "detail": page.inner_text("#predeploy-banner-detail"),
        "class": page.get_attribute("#predeploy-banner .predeploy-verdict", "class") or "",
        "cards": page.eval_on_selector_all("#predeploy-banner .predeploy-card", "cs => cs.map(c => c.dataset.gate + ' ' + c.dataset.status).join(', ')"),
        "reasons": page.eval_on_selector_all("#predeploy-banner .predeploy-card-reason", "cs => cs.map(c => c.innerText).join('|')"),
    }


def test_the_report_opens_on_the_decision_for_no_go_and_go(pytester: pytest.Pytester, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_project(pytester, gates=PARITY_FAILS_GATE2)
    assert pytester.runpytest_subprocess("--predeploy-release=v1.0").ret == 1
    top = _top_of_page(browser, root / ".artifacts/pre-deployment/pytest-report.html", tmp_path / "top-no-go.png")
    assert top["verdict"] == "NO-GO · release v1.0"
    assert top["detail"] == "NO-GO: Gate 2 (Deployment Rehearsal) failed (exit status 1)"
    assert top["class"] == "predeploy-verdict predeploy-verdict-no-go"
    assert top["cards"] == "1 passed, 2 failed, 3 halted, 10 halted"
    assert "worker never became healthy" in top["reasons"]  # the blocking reason in full, on the card

    for path in root.glob("gates/*.py"):
        path.unlink()
    make_project(pytester, gates=WITH_GATE4)
    # Fake gates that bind no declared criterion all pass: never GO, and the page says so.
    assert pytester.runpytest_subprocess("--predeploy-release=v1.0").ret == ExitStatus.NOT_JUDGED
    top = _top_of_page(browser, root / ".artifacts/pre-deployment/pytest-report.html", tmp_path / "top-not-judged.png")
    assert top["verdict"] == "NOT JUDGED (NOT GO) · release v1.0"
    assert top["class"] == "predeploy-verdict predeploy-verdict-partial"
    assert top["cards"] == "1 passed, 2 passed, 3 passed, 4 passed, 10 passed"
