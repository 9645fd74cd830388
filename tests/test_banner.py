"""The review page and the GitHub summary from plain data, and the accepted risks read from the
artifacts: the decision first, stated truthfully."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_predeploy.core.artifacts import INTAKE_REPORT, SECURITY_REPORT, write_artifact
from pytest_predeploy.core.fields import Severity
from pytest_predeploy.harness.banner import Decision, GateCard, Package, Risk, RootCause, Signature, summary_markdown
from pytest_predeploy.harness.reviewdata import read_evidence
from pytest_predeploy.harness.reviewpage import replace_review, review_html
from pytest_predeploy.intake.approvals import ApprovalCheck, IntakeReport
from pytest_predeploy.security import SecurityReport
from pytest_predeploy.security.report import Approval, ScannerResult
from tests.browser import browser  # noqa: F401 (the module-scoped Chromium fixture)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

TRACEBACK = 'Traceback (most recent call last):\n  File "server.py", line 339, in main\nRuntimeError: queue DSN missing <script>'
REASON = "test_rollback: rollback of worker failed\n  worker: still on v1.2 after 30s\n" + "\n".join("  " + line for line in TRACEBACK.splitlines())

NO_GO = Decision(
    kind="no-go",
    detail="NO-GO: Gate 3 (Rollback & Security) failed",
    release="v1.2",
    previous_release="v1.1",
    package=Package("none", note="a run seals one only when gates 1-3 pass and Gate 4 runs"),
    gates=(
        GateCard(1, "Intake Confirmation", "passed", figures=("approvals 3/3",)),
        GateCard(2, "Deployment Rehearsal", "passed", figures=("2/2 services deployed",), advisories=("observability: no data",)),
        GateCard(
            3, "Rollback & Security", "failed", reason=REASON, root_causes=(RootCause("worker: rollback failed", TRACEBACK, "transcripts/rollback-worker.log"),)
        ),
        GateCard(4, "Readiness Approval", "halted", reason="halted: Gate 3 (Rollback & Security) failed", halted_tests=3),
    ),
    risks=(Risk("drift waiver", "DRIFT-101", "configuration.logging.level", "sre-oncall@demo-shop", "debug logs while rehearsing", "2030-12-31"),),
)

GO = Decision(
    kind="go",
    detail="GO: protocol complete",
    release="v1.2",
    package=Package("digest", "ded594ab" * 8, 40),
    signatures=(Signature("release-manager", "Riley Manager", "go"), Signature("qa-lead", "Quinn QA", "go")),
    gates=tuple(GateCard(n, f"Gate {n}", "passed", figures=(f"figure {n}",)) for n in (1, 2, 3, 4)),
)


def test_page_leads_with_verdict_package_digest_and_signers() -> None:
    markup = review_html(GO)
    assert markup.index("predeploy-verdict-go") < markup.index("Gates</h2>")
    assert "GO &middot; release v1.2" in markup
    assert (
        f"<code id='predeploy-package-sha256'><strong>{'ded594ab' * 8}</strong></code>" in markup and "<span id='predeploy-package-entries'>40</span>" in markup
    )
    assert "Riley Manager (release-manager, go), Quinn QA (qa-lead, go)" in markup


def test_no_go_says_no_package_and_asks_nobody_to_sign() -> None:
    markup = review_html(NO_GO)
    assert "data-state='none'" in markup and "No package sealed: a run seals one only when" in markup
    assert "Signed by" not in markup and "nobody yet" not in markup


def test_sealed_copy_says_it_cannot_name_its_own_digest() -> None:
    markup = review_html(
        Decision(kind="awaiting", detail="AWAITING SIGN-OFF from: qa-lead", release="v1.2", package=Package("sealed-copy"), pending_roles=("qa-lead",))
    )
    assert "data-state='sealed-copy'" in markup and "cannot name the digest of the zip that holds it" in markup
    assert "Signed by" not in markup  # the verdict line already names the roles awaited


def test_failure_shows_reason_and_root_cause_once_escaped() -> None:
    markup = review_html(NO_GO)
    assert "worker: still on v1.2 after 30s" in markup  # the reason, every line that is not the excerpt
    assert markup.count("RuntimeError: queue DSN missing &lt;script&gt;") == 1  # the traceback once, escaped
    assert "Root cause: worker: rollback failed" in markup
    assert "halted: Gate 3 (Rollback &amp; Security) failed; 3 tests not run" in markup  # one line for the halted gate
    assert "<script>(function" in markup and markup.count("<script>") == 1  # only our placement script


def test_review_is_rendered_again_in_place() -> None:
    page = "<html><body><h1>x</h1>" + review_html(NO_GO) + "<table id='results-table'></table></body></html>"
    again = replace_review(page, GO)
    assert again.startswith("<html><body><h1>x</h1>") and again.endswith("<table id='results-table'></table></body></html>")
    assert "predeploy-verdict-go" in again and "predeploy-verdict-no-go" not in again


def test_github_summary_is_the_page_shorter() -> None:
    text = summary_markdown(NO_GO)
    assert text.splitlines()[0] == "## NO-GO: release v1.2"
    assert "**NO-GO: Gate 3 (Rollback & Security) failed**" in text
    row = next(line for line in text.splitlines() if line.startswith("| 3 "))
    assert "rollback of worker failed<br>  worker: still on v1.2 after 30s" in row
    assert "| 2 | Deployment Rehearsal | PASSED | 2/2 services deployed | advisory: observability: no data |" in text
    assert "**Root cause: worker: rollback failed** (transcripts/rollback-worker.log)" in text and "RuntimeError: queue DSN missing" in text
    assert "| drift waiver | DRIFT-101 | configuration.logging.level | sre-oncall@demo-shop | debug logs while rehearsing | 2030-12-31 |" in text
    assert "Signed by" not in text and "No package sealed" in text
    go = summary_markdown(GO)
    assert "Signed by: Riley Manager (release-manager, go), Quinn QA (qa-lead, go)" in go and f"sha256 {'ded594ab' * 8}, 40 entries" in go


CONFTEST = """
from pytest_predeploy.harness.banner import Decision, GateCard
from pytest_predeploy.harness.reviewpage import review_html

def pytest_html_results_summary(prefix, summary, postfix, session):
    prefix.append(review_html(Decision(kind={kind!r}, detail={detail!r}, release="v1.2",
        gates=(GateCard(1, "Intake Confirmation", "passed", figures=("approvals 3/3",)),))))
"""


@pytest.mark.parametrize(("kind", "detail"), [("go", "GO: protocol complete"), ("no-go", "NO-GO: Gate 1 (Intake Confirmation) failed")])
def test_review_is_above_everything_in_a_real_pytest_html_report(pytester: pytest.Pytester, browser: Browser, tmp_path: Path, kind: str, detail: str) -> None:  # noqa: F811
    pytester.makeconftest(CONFTEST.format(kind=kind, detail=detail))
    pytester.makepyfile(test_a="import pytest\ndef test_one():\n    pass\ndef test_two():\n    pytest.skip('not today')\n")
    result = pytester.runpytest_subprocess("--html=report.html", "--self-contained-html", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    page = browser.new_page(viewport={"width": 1200, "height": 700})
    page.goto((pytester.path / "report.html").as_uri())
    page.wait_for_selector("#results-table tbody.results-table-row", state="attached")
    page.screenshot(path=str(tmp_path / f"top-{kind}.png"))
    assert page.eval_on_selector("body", "b => b.firstElementChild.id") == "predeploy-review"
    assert page.inner_text("#predeploy-banner-verdict").startswith(("GO" if kind == "go" else "NO-GO") + " · release v1.2")
    assert page.get_attribute("#predeploy-banner", "class") == f"predeploy-verdict predeploy-verdict-{kind}"
    # pytest-html's own table (per-test logs) is folded into the last, collapsed section.
    assert page.eval_on_selector("#results-table", "t => t.closest('details') && t.closest('details').id") == "predeploy-pytest-html"
    assert not page.is_visible("#results-table") and not page.is_visible("text=Summary")
    banner = page.locator("#predeploy-banner").bounding_box()
    assert banner and banner["y"] + banner["height"] <= 700  # the whole verdict is in the first screen


def test_every_waiver_once_with_owner_and_expiry_and_what_covered_a_scanner(tmp_path: Path) -> None:
    record = tmp_path / "security-waivers.yaml"
    record.write_text(
        "release: v1.2\nstatus: approved\napproved_by: Sam Security\napproved_at: 2026-11-22T11:00:00Z\nwaivers:\n"
        "  - {id: SEC-7, owner: Sam Security, justification: loopback only, expires_at: 2030-06-30T00:00:00Z}\n"
        "  - {id: SEC-8, owner: Pat Platform, justification: fixed upstream next week, expires_at: 2027-01-15T00:00:00Z}\n"
    )
    when = datetime(2030, 6, 30, tzinfo=UTC)
    check = ApprovalCheck(
        name="security-waivers", title="Security waivers", file=str(record), status="ok", detail="", approved_by="Sam Security", waivers=["SEC-7", "SEC-8"]
    )
    write_artifact(tmp_path / INTAKE_REPORT, IntakeReport(release="v1.2", checks=[check], approved=True))
    scanners = [
        ScannerResult(name="osv", tool="osv", status="passed", fail_closed=True, duration_seconds=0.1),
        ScannerResult(name="pip-audit", tool="pip-audit", status="unavailable", reason="offline", fail_closed=False, duration_seconds=0.0),
    ]
    applied = Approval(waiver="SEC-7", owner="Sam Security", justification="loopback only", expires_at=when, findings=["bandit: B104 in server.py:12"])
    security = SecurityReport(
        release="v1.2", environment="staging", blocking_severity=Severity.major, scanners=scanners, findings=[], approvals=[applied], blocking=False
    )
    write_artifact(tmp_path / SECURITY_REPORT, security)

    found = read_evidence(tmp_path)
    assert [(r.id, r.covers, r.owner, r.why, r.until) for r in found.risks] == [
        ("SEC-7", "bandit: B104 in server.py:12", "Sam Security", "loopback only", "2030-06-30"),  # applied: what it cleared
        ("SEC-8", "granted by Security waivers", "Pat Platform", "fixed upstream next week", "2027-01-15"),  # granted, from the record
    ]
    assert found.scanners_not_run == ["pip-audit: offline; not required (fail_closed: false); covered by osv (passed)"]
