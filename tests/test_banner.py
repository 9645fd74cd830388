"""The verdict banner and gate cards: the decision first, in HTML and in the GitHub summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_predeploy.harness.banner import Decision, GateCard, Signature, banner_html, summary_markdown
from tests.browser import browser  # noqa: F401 (the module-scoped Chromium fixture)

REASON = "rollback of worker failed\n  worker: still on v1.2 after 30s\n  worker: health /healthz answered 503 <script>"

NO_GO = Decision(
    kind="no-go",
    detail="NO-GO: Gate 3 (Rollback & Security) failed",
    release="v1.2",
    package_sha256=None,
    gates=(
        GateCard(1, "Intake Confirmation", "passed", figures=("approvals 3/3",)),
        GateCard(2, "Deployment Rehearsal", "passed", figures=("2/2 services deployed",), advisories=("observability: no data",)),
        GateCard(3, "Rollback & Security", "failed", reason=REASON),
        GateCard(4, "Readiness Approval", "halted", reason="halted: Gate 3 (Rollback & Security) failed"),
    ),
)

GO = Decision(
    kind="go",
    detail="GO: protocol complete",
    release="v1.2",
    package_sha256="ded594ab" * 8,
    signatures=(Signature("release-manager", "Riley Manager", "go"), Signature("qa-lead", "Quinn QA", "go")),
    gates=tuple(GateCard(n, f"Gate {n}", "passed", figures=(f"figure {n}",)) for n in (1, 2, 3, 4)),
)


def test_banner_leads_with_verdict_release_package_and_signers() -> None:
    markup = banner_html(GO)
    assert "predeploy-verdict-go" in markup
    assert "GO &middot; release v1.2" in markup
    assert "ded594ab" * 8 in markup
    assert "Riley Manager (release-manager, go), Quinn QA (qa-lead, go)" in markup


def test_blocking_reasons_are_shown_in_full_and_escaped() -> None:
    markup = banner_html(NO_GO)
    assert "predeploy-verdict-no-go" in markup and "no package sealed" in markup
    assert "worker: health /healthz answered 503 &lt;script&gt;" in markup  # the last line too, escaped
    assert "<script>(function" in markup and markup.count("<script>") == 1  # only our placement script


def test_github_summary_leads_with_the_same_verdict() -> None:
    text = summary_markdown(NO_GO)
    assert text.splitlines()[0] == "## NO-GO: release v1.2"
    assert "**NO-GO: Gate 3 (Rollback & Security) failed**" in text
    row = next(line for line in text.splitlines() if line.startswith("| 3 "))
    assert "rollback of worker failed<br>  worker: still on v1.2 after 30s<br>  worker: health /healthz answered 503" in row
    assert "| 2 | Deployment Rehearsal | PASSED | 2/2 services deployed | advisory: observability: no data |" in text
    assert "Signed by: Riley Manager (release-manager, go), Quinn QA (qa-lead, go)" in summary_markdown(GO)


CONFTEST = """
from pytest_predeploy.harness.banner import Decision, GateCard, banner_html

def pytest_html_results_summary(prefix, summary, postfix, session):
    prefix.append(banner_html(Decision(kind={kind!r}, detail={detail!r}, release="v1.2",
        gates=(GateCard(1, "Intake Confirmation", "passed", figures=("approvals 3/3",)),))))
"""


@pytest.mark.parametrize(("kind", "detail"), [("go", "GO: protocol complete"), ("no-go", "NO-GO: Gate 1 (Intake Confirmation) failed")])
def test_banner_is_above_everything_in_a_real_pytest_html_report(pytester: pytest.Pytester, browser, tmp_path: Path, kind: str, detail: str) -> None:  # noqa: F811
    pytester.makeconftest(CONFTEST.format(kind=kind, detail=detail))
    pytester.makepyfile(test_a="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("--html=report.html", "--self-contained-html", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    page = browser.new_page(viewport={"width": 1200, "height": 700})
    page.goto((pytester.path / "report.html").as_uri())
    page.wait_for_selector("#results-table tbody.results-table-row")
    page.screenshot(path=str(tmp_path / f"top-{kind}.png"))  # the top of the page, as a reviewer first sees it
    assert page.eval_on_selector("body", "b => b.firstElementChild.id") == "predeploy-banner"
    assert page.inner_text("#predeploy-banner-verdict").startswith(("GO" if kind == "go" else "NO-GO") + " · release v1.2")
    assert page.get_attribute("#predeploy-banner .predeploy-verdict", "class") == f"predeploy-verdict predeploy-verdict-{kind}"
    banner = page.locator("#predeploy-banner").bounding_box()
    title = page.locator("#title").bounding_box()
    environment = page.locator("#environment").bounding_box()
    results = page.locator("#results-table").bounding_box()
    assert banner and title and environment and results
    assert banner["y"] < title["y"] < results["y"] < environment["y"]
    assert banner["y"] + banner["height"] <= 700  # the whole banner is in the first screen
