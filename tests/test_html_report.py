"""The review page a release reviewer decides from, rendered in a real headless Chromium.

Three real runs of the embedded demo (one per scenario, shared by the tests of this module):
awaiting sign-off (the full protocol), GO (the two demo reviewers sign, Gate 4 re-run) and a
NO-GO caused by a worker whose v1.2 crashes at start with a Python traceback. Every check reads
the rendered page, as a reviewer would, and compares it with what the package and
`predeploy verify` say. A screenshot of each is written; with ``PREDEPLOY_DOCS_SCREENSHOTS=1``
into ``docs/img/`` (the README shows them).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_predeploy.harness.gates import ExitStatus
from tests.browser import browser  # noqa: F401 (the module-scoped Chromium fixture)
from tests.project import GATES, json_report, make_project
from tests.signoff_project import approve, git
from tests.signoff_project import project as signoff_project
from tests.staging_support import copy_demo, processes_under

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(".artifacts/pre-deployment")
PACKAGE = "PRE-DEPLOYMENT-PACKAGE.zip"
REVIEW = "PRE-DEPLOYMENT-REVIEW.html"
#: Python's repr of pytest's skip tuple: ('/path/test_x.py', 27, 'Skipped: ...').
CONDITIONS = "watch checkout error ratio for 1h after rollout"
RAW_TUPLE = re.compile(r"\(\s*'[^']*',\s*\d+,\s*'")


def _run(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def _pytest(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run(root, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--predeploy-release=v1.2", *args, env=env)


def _predeploy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(root, sys.executable, "-m", "pytest_predeploy", *args)


@dataclass
class Scenario:
    root: Path
    page: Path  # the page the reviewer opens for this scenario
    result: subprocess.CompletedProcess[str]
    verify: str = ""  # `predeploy verify` output, when there is a package
    package_sha256: str = ""
    summary: str = ""  # the GitHub step summary


@dataclass
class Runs:
    awaiting: Scenario
    go: Scenario
    no_go: Scenario


def _package(root: Path) -> tuple[str, str]:
    package = root / ARTIFACTS / PACKAGE
    verify = _predeploy(root, "verify", str(package))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return hashlib.sha256(package.read_bytes()).hexdigest(), verify.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    base = tmp_path_factory.mktemp("review")
    root = copy_demo(base / "demo")
    # Sign-offs are recorded in the project's git repository (the branch predeploy/signoffs).
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "demo")):
        git(root, *args)
    summary = base / "summary.md"
    first = _pytest(root, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert first.returncode == ExitStatus.AWAITING_SIGNOFF, first.stdout[-3000:] + first.stderr
    digest, verify = _package(root)
    # The reviewer's copy as it stood while the package awaited sign-off (the GO run rewrites it).
    awaiting_page = base / "awaiting.html"
    shutil.copy(root / ARTIFACTS / REVIEW, awaiting_page)
    awaiting = Scenario(root, awaiting_page, first, verify, digest, summary.read_text())

    package = str(root / ARTIFACTS / PACKAGE)
    for role, key, conditions in (("release-manager", "riley-manager_ed25519", ()), ("qa-lead", "quinn-qa_ed25519", ("--conditions", CONDITIONS))):
        signed = _predeploy(root, "approve", package, "--role", role, "--key", f"demo/keys/{key}", "--decision", "go", *conditions)
        assert signed.returncode == 0, signed.stdout + signed.stderr
    gate4 = _pytest(root, "gates/test_gate4_readiness.py")
    assert gate4.returncode == ExitStatus.GO, gate4.stdout[-3000:] + gate4.stderr
    digest, verify = _package(root)
    go = Scenario(root, root / ARTIFACTS / REVIEW, gate4, verify, digest)

    crash = copy_demo(base / "crash")
    server = crash / "demo/releases/v1.2/server.py"
    source = server.read_text()
    anchor = "    manifest = json.loads(args.manifest.read_text())\n"
    assert anchor in source
    server.write_text(
        source.replace(anchor, anchor + '    if args.role == "worker":\n        raise RuntimeError("checkout queue DSN missing: cannot start worker")\n', 1)
    )
    failed = _pytest(crash)
    assert failed.returncode == ExitStatus.NO_GO, failed.stdout[-3000:] + failed.stderr
    no_go = Scenario(crash, crash / ARTIFACTS / REVIEW, failed)

    yield Runs(awaiting, go, no_go)
    leftovers = processes_under(base)
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left running: {[p.cmdline() for p in leftovers]}"


def _open(browser: Any, page_path: Path, shot: str, tmp_path: Path) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_path.as_uri())
    page.wait_for_selector("#predeploy-review")
    page.wait_for_load_state("load")
    # The first screen, as a reviewer first sees it; the docs show it.
    for_docs = os.environ.get("PREDEPLOY_DOCS_SCREENSHOTS") and shot in ("awaiting", "go", "no-go")
    target = (REPO / "docs/img" if for_docs else tmp_path) / f"review-{shot}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 0
    assert errors == []
    # The decision comes first on the page.
    assert page.eval_on_selector("body", "b => b.firstElementChild.id") == "predeploy-review"
    return page


def _text(page: Any) -> str:
    """Everything a reviewer can read, every collapsed section opened."""
    page.eval_on_selector_all("details", "ds => ds.forEach(d => { d.open = true; })")
    return str(page.inner_text("body"))


def _entries(verify: str) -> int:
    found = re.search(r"(\d+) entries listed in the manifest", verify)
    assert found, verify
    return int(found.group(1))


def _expect_no_raw_tuples(page: Any, page_path: Path) -> None:
    assert not RAW_TUPLE.search(_text(page))
    assert not RAW_TUPLE.search(html.unescape(page_path.read_text()))  # nor in the data pytest-html renders from


def _counts_agree(page: Any, verify: str) -> None:
    text = _text(page)
    shown = {int(n) for n in re.findall(r"(\d+) entries", text)} | {int(n) for n in re.findall(r"(\d+) artifacts indexed", text)}
    assert shown == {_entries(verify)}, (shown, verify)


def _risks_and_approvals(page: Any, root: Path) -> None:
    """Every waiver (drift and security) and every upstream approval is on the page with its
    owner and expiry, as the config and the approval records state them."""
    config = yaml.safe_load((root / "predeploy.yaml").read_text())
    risks = page.eval_on_selector_all("#predeploy-risks tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")
    by_id = {row[1]: row for row in risks}
    expected = [(w["id"], w["owner"], str(w["expires_at"])[:10]) for w in config["parity"]["waivers"]]
    approvals = page.eval_on_selector_all("#predeploy-approvals tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")
    assert [row[0] for row in approvals] == [a["title"] for a in config["approvals"]["upstream"]]
    for upstream, row in zip(config["approvals"]["upstream"], approvals, strict=True):
        record = yaml.safe_load((root / upstream["file"]).read_text())
        assert row[2] == record["approved_by"] and row[4] == str(record["expires_at"])[:10]
        expected += [(w["id"], w["owner"], str(w["expires_at"])[:10]) for w in record.get("waivers", [])]
    assert len(expected) >= 2  # the demo has a drift waiver and a security waiver
    for waiver_id, owner, until in expected:
        assert waiver_id in by_id, (waiver_id, risks)
        assert by_id[waiver_id][3] == owner and by_id[waiver_id][5] == until and by_id[waiver_id][4].strip()


def test_awaiting_page_names_the_package_to_sign_and_every_accepted_risk(runs: Runs, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    scenario = runs.awaiting
    page = _open(browser, scenario.page, "awaiting", tmp_path)
    assert page.inner_text("#predeploy-banner-verdict") == "AWAITING SIGN-OFF · release v1.2"
    assert page.get_attribute("#predeploy-package", "data-state") == "digest"
    assert page.inner_text("#predeploy-package-sha256") == scenario.package_sha256  # the zip's sha256, on the reviewer's copy
    assert int(page.inner_text("#predeploy-package-entries")) == _entries(scenario.verify)
    _counts_agree(page, scenario.verify)
    _risks_and_approvals(page, scenario.root)
    assert page.locator("#predeploy-banner-signed").count() == 0  # nobody signed: no "Signed by: nobody yet"
    text = _text(page)
    assert "pip-audit" in text and "covered by osv" in text  # a scanner that could not run: why, and what covered for it
    assert page.locator("#predeploy-changes tbody tr").count() == 2 and "v1.1" in text and "digest" in text
    assert page.locator("#predeploy-timings tbody tr").count() == 2 and page.locator("#predeploy-review svg").count() >= 2
    tally = page.inner_text("#predeploy-tests summary")
    assert "1 awaiting sign-off" in tally and "skipped" not in tally.lower()
    assert not re.search(r"\d+ Skipped", text)  # awaiting sign-off is not counted as a skip anywhere
    results = page.inner_text("#results-table")  # pytest-html's table, folded into the last section
    assert "test_required_signoffs_recorded_on_the_package_digest AWAITING SIGN-OFF" in results
    assert text.count("Summary") == 0  # no empty pytest-html "Summary" heading
    _expect_no_raw_tuples(page, scenario.page)
    # The copy sealed inside the package says so, and leaves the digest to the reviewer's copy.
    with zipfile.ZipFile(scenario.root / ARTIFACTS / PACKAGE) as archive:
        sealed = archive.read("pytest-report.html").decode()
    assert "data-state='sealed-copy'" in sealed and scenario.package_sha256 not in sealed
    # The GitHub step summary says the same, shorter.
    assert scenario.summary.splitlines()[0] == "## AWAITING SIGN-OFF: release v1.2"
    assert scenario.package_sha256 in scenario.summary and "DRIFT-101" in scenario.summary and "sre-oncall@demo-shop" in scenario.summary


def test_go_page_names_the_signed_package_and_its_signers(runs: Runs, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    scenario = runs.go
    for shot, path in (("go", scenario.page), ("go-gate4", scenario.root / ARTIFACTS / "gate4-pytest-report.html")):
        page = _open(browser, path, shot, tmp_path)
        assert page.inner_text("#predeploy-banner-verdict") == "GO · release v1.2"
        assert page.inner_text("#predeploy-package-sha256") == scenario.package_sha256
        _counts_agree(page, scenario.verify)
        signed = page.inner_text("#predeploy-banner-signed")
        signers = yaml.safe_load((scenario.root / "demo/signers.yaml").read_text())["signers"]
        for signer in signers:
            assert f"{signer['identity']} ({signer['roles'][0]}, go" in signed
        assert f"conditions: {CONDITIONS}" in signed  # what the reviewer signed under
        # Every gate, also those a Gate 4 re-check did not run (as the sealing run recorded them).
        cards = page.eval_on_selector_all(".predeploy-card", "cs => cs.map(c => c.dataset.gate + ' ' + c.dataset.status)")
        assert cards == ["1 passed", "2 passed", "3 passed", "4 passed"]
        _risks_and_approvals(page, scenario.root)
        _expect_no_raw_tuples(page, path)


def test_no_go_page_shows_the_crashing_services_traceback(runs: Runs, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    scenario = runs.no_go
    page = _open(browser, scenario.page, "no-go", tmp_path)
    assert page.inner_text("#predeploy-banner-verdict") == "NO-GO · release v1.2"
    assert page.inner_text("#predeploy-banner-detail").startswith("NO-GO: Gate 2 (Deployment Rehearsal) failed")
    assert page.get_attribute("#predeploy-package", "data-state") == "none"
    assert "No package sealed" in page.inner_text("#predeploy-package")
    assert page.locator("#predeploy-banner-signed").count() == 0
    cause = page.inner_text(".predeploy-card[data-gate='2'] .predeploy-root-cause")
    assert "Traceback (most recent call last)" in cause and "RuntimeError: checkout queue DSN missing: cannot start worker" in cause
    # Shown once: the card's reason does not repeat the traceback the root cause shows.
    assert "RuntimeError" not in page.inner_text(".predeploy-card[data-gate='2'] .predeploy-card-reason")
    halted = page.eval_on_selector_all(".predeploy-halted-line", "ps => ps.map(p => p.innerText)")
    assert halted == ["halted: Gate 2 (Deployment Rehearsal) failed; 3 tests not run"] * 2  # one line per gate
    _text(page)
    results = page.inner_text("#results-table")
    assert results.count("HALTED") == 6  # every test is still listed there, labelled
    _risks_and_approvals(page, scenario.root)
    _expect_no_raw_tuples(page, scenario.page)


def test_the_page_reads_without_javascript(runs: Runs, browser: Any) -> None:  # noqa: F811
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(runs.awaiting.page.as_uri())
    assert page.inner_text("#predeploy-banner-verdict") == "AWAITING SIGN-OFF · release v1.2"
    assert page.inner_text("#predeploy-package-sha256") == runs.awaiting.package_sha256
    assert page.is_visible("#predeploy-risks") and page.is_visible(".predeploy-cards")
    assert not page.is_visible("text=Summary")  # pytest-html's heading, empty without its script
    context.close()


def test_reviewers_copy_names_the_digest_that_the_sealed_copy_cannot(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    artifacts = root / ARTIFACTS
    digest = hashlib.sha256((artifacts / PACKAGE).read_bytes()).hexdigest()
    with zipfile.ZipFile(artifacts / PACKAGE) as archive:
        sealed = archive.read("pytest-report.html")
    assert (artifacts / "pytest-report.html").read_bytes() == sealed  # left as sealed: the package is not stale
    assert b"data-state='sealed-copy'" in sealed and digest.encode() not in sealed
    review = (artifacts / REVIEW).read_text()
    assert f"data-state='digest' data-sha256='{digest}'" in review and "AWAITING SIGN-OFF &middot; release v1.0" in review

    assert approve(root, "release-manager", "riley").returncode == 0
    assert approve(root, "qa-lead", "quinn").returncode == 0
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate4_readiness.py").ret == ExitStatus.GO
    review = (artifacts / REVIEW).read_text()  # rewritten with the re-check's judgement
    assert f"data-sha256='{digest}'" in review and "GO &middot; release v1.0" in review and "Signed by: " in review


def test_a_later_partial_run_says_not_to_sign_the_earlier_package(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDEPLOY_OPERATOR", "rehearsal-operator")
    root = signoff_project(pytester)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.AWAITING_SIGNOFF
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0", "gates/test_gate2_rehearsal.py").ret == ExitStatus.NOT_JUDGED
    page = (root / ARTIFACTS / REVIEW).read_text()  # the reviewer's copy no longer offers it for signing
    assert "data-state='none'" in page and "sealed by an earlier run and this run did not find it current: do not sign it" in page
    assert "NOT JUDGED (NOT GO) &middot; release v1.0" in page


FAILS_GATE2 = dict(GATES)
FAILS_GATE2["test_gate2_rehearsal.py"] = """
    import pytest
    pytestmark = pytest.mark.gate(2, "Deployment Rehearsal")

    @pytest.mark.must
    def test_deployed(evidence):
        evidence.figure("api 1.2 s, worker 0.9 s")
        evidence.table("Deploy timings", ["service", "seconds"], [["api", 1.2], ["worker", 0.9]])
        assert False, "worker never became healthy"
"""


def test_every_test_in_gate_order_the_environment_and_json_metadata(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, gates=FAILS_GATE2)
    assert pytester.runpytest_inprocess("--predeploy-release=v1.0").ret == ExitStatus.NO_GO
    page = (root / ARTIFACTS / REVIEW).read_text()
    tests = page[page.index("id='predeploy-tests'") : page.index("id='predeploy-environment'")]
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td><td>(\w+)</td><td>([\w -]+)</td>", tests)
    assert rows == [
        ("1", "test_parity_clean", "MUST", "passed"),
        ("1", "test_flags_refreshed", "GUIDELINE", "advisory"),
        ("2", "test_deployed", "MUST", "failed"),
        ("3", "test_rollback", "MUST", "halted"),
        ("10", "test_extra", "MUST", "halted"),
    ]
    assert "worker never became healthy" in tests  # a failure's message, on its row
    environment = page[page.index("id='predeploy-environment'") :]
    for key in ("Release", "Previous release", "Commit", "Config digest", "Environment"):
        assert f"<td>{key}</td>" in environment
    assert "Deploy timings" in page  # the evidence a gate test attached, in pytest-html's table
    report = json_report(root)
    assert {t["nodeid"].split("::")[1]: t["metadata"]["gate"] for t in report["tests"]}["test_deployed"] == 2
