"""Glue to pytest-html, pytest-json-report and pytest-metadata (untyped, private attributes,
old-style hooks): everything we do to the reports lives here, registered only for the plugins
that are present, so the rest of the code never touches their internals.

What a release reviewer gets: the title ``Pre-deployment readiness <release>`` and the review
page (``harness/reviewpage.py``) leading the HTML report; after the package is sealed, the
reviewer's copy of that page beside it (``PRE-DEPLOYMENT-REVIEW.html``, naming the package's
digest, which the copy sealed inside cannot); the same decision, shorter, in the GitHub step
summary; the gate outcomes in the JSON report.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from pytest_metadata.plugin import metadata_key  # type: ignore[import-untyped]  # pytest-metadata ships no types

from pytest_predeploy.core.artifacts import write_text_atomic
from pytest_predeploy.harness.banner import REVIEW_PAGE, Decision, TestRow, summary_markdown
from pytest_predeploy.harness.decision import ProtocolSession, decision, environment, verdict, which_reports
from pytest_predeploy.harness.gates import cannot_write, gate_of, kind_of
from pytest_predeploy.harness.itemkeys import evidence_key
from pytest_predeploy.harness.reviewpage import replace_review, review_html
from pytest_predeploy.harness.steps import FIXTURE_ARTIFACTS


def _outcome(report: pytest.TestReport) -> tuple[str, str]:
    """Our outcome of one test report and its message in one line (never pytest's raw skip tuple)."""
    label = getattr(report, "predeploy_outcome", None)
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else report.longreprtext
        reason = reason.removeprefix("Skipped: ")
        return label or ("halted" if reason.startswith("halted: ") else "skipped"), reason
    if report.failed:
        # The exception's own message (pytest's crash line), not the first line of the traceback.
        crash = getattr(report.longrepr, "reprcrash", None)
        message = str(getattr(crash, "message", "") or report.longreprtext).strip()
        return label or ("error" if report.when != "call" else "failed"), message
    return label or "passed", str(getattr(report, "predeploy_detail", "") or "")


class ReportHooks:
    """Hooks for the reports of a protocol run; registered by the protocol session."""

    def __init__(self, session: ProtocolSession) -> None:
        self.session = session
        #: One row per test, in run order: its first phase that did not pass, else its call.
        self.rows: dict[str, TestRow] = {}

    # -- every report ----------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return report
        extras = list(getattr(report, "extras", []))
        links = _artifact_links(item, self.session.context.artifacts)
        # pytest reports carry extra attributes by design (TestReport(**extra)), but pytest's types declare none.
        report.predeploy_artifacts = links  # type: ignore[attr-defined]
        for name in links:
            extras.append({"name": name, "format_type": "url", "content": name, "mime_type": None, "extension": None})
        found = item.stash.get(evidence_key, None)
        if found is not None:
            redact = self.session.context.redactor.redact
            extras.extend({"name": None, "format_type": "html", "content": redact(content), "mime_type": None, "extension": None} for _, content in found.items)
        # pytest-html reads its extras from this report attribute, which pytest's types do not declare.
        report.extras = extras  # type: ignore[attr-defined]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        known = self.rows.get(report.nodeid)
        if known is not None and known.outcome != "passed":
            return
        if report.when == "teardown" and (known is None or not report.failed):
            return
        if report.when == "setup" and report.passed:
            return
        props = dict(report.user_properties)
        outcome, message = _outcome(report)
        first = message.strip().splitlines()[0] if message.strip() else ""
        self.rows[report.nodeid] = TestRow(
            gate=str(props.get("gate", "")),
            name=report.nodeid.split("::", 1)[-1],
            requirement=str(props.get("requirement", "")),
            outcome=outcome,
            seconds=(known.seconds if known else 0.0) + report.duration,
            message=self.session.context.redactor.redact(first[:300]),
        )

    # After the session's own sessionfinish wrapper (``trylast``, so inside this one): the package
    # is sealed by then, and the page can say what was sealed.
    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        result = yield
        try:
            self.write_final_pages(int(session.exitstatus))
        except OSError as exc:
            self.session.write_problems.append(f"review page: {cannot_write(exc, self.session.context.artifacts)}")
        return result

    def decision(self, exit_status: int) -> Decision:
        return decision(self.session, exit_status, list(self.rows.values()))

    def write_final_pages(self, exit_status: int) -> None:
        """The reviewer's copy (this run's page as the run ended: naming the digest of the
        package it sealed or re-judged, or saying why there is none to sign), and this run's
        report brought up to date where no package holds it (a seal that failed after it was
        written). The reviewer's copy is rewritten by every run, so it never outlives the
        judgement it shows (a later partial run makes an earlier package unsignable)."""
        session = self.session
        path = getattr(session.config.option, "htmlpath", None)
        if not path or not Path(path).is_file():
            return
        page = Path(path).read_text(encoding="utf-8")
        final = session.context.redactor.redact(replace_review(page, self.decision(exit_status)))
        write_text_atomic(session.context.artifacts / REVIEW_PAGE, final)
        if not session.package_sha256 and final != page:
            write_text_atomic(Path(path), final)


def _artifact_links(item: pytest.Item, artifacts: Path) -> list[str]:
    names: list[str] = []
    for fixture in getattr(item, "fixturenames", []):
        for name in FIXTURE_ARTIFACTS.get(fixture, []):
            if (artifacts / name).exists() and name not in names:
                names.append(name)
    return names


class HtmlHooks:
    """pytest-html: title, the review page, outcome labels."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Pre-deployment readiness {self.hooks.session.context.release}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
        ours = self.hooks.session
        prefix.append(ours.context.redactor.redact(review_html(self.hooks.decision(int(session.exitstatus)))))

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # pytest-html filters rows by the text of the result cell (an outcome name of its own: a
        # row saying "Awaiting sign-off" there would be filtered out of its table), so that cell
        # keeps pytest's word and ours (advisory, no data, awaiting sign-off, halted) is a badge
        # by the test's name.
        label = getattr(report, "predeploy_outcome", None)
        if label is None and report.skipped and "halted: Gate" in report.longreprtext:
            label = "halted"
        if label and len(cells) > 1:
            badge = f' <strong class="predeploy-badge">{html.escape(label.upper())}</strong>'
            cells[1] = cells[1].replace("</td>", badge + "</td>", 1)

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        # A skip's longrepr is pytest's (path, line, reason) tuple, which pytest-html prints as
        # Python text: the reason alone says it.
        if report.skipped and isinstance(report.longrepr, tuple) and data:
            data[0] = html.escape(_outcome(report)[1]) + "\n"


class JsonHooks:
    """pytest-json-report: per-test and report-level metadata, and the environment section."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_json_runtest_metadata(self, item: pytest.Item, call: pytest.CallInfo[None]) -> dict[str, Any]:
        gate = gate_of(item)
        if gate is None:
            return {}
        return {
            "gate": gate[0],
            "gate_name": gate[1],
            "requirement": kind_of(item).upper(),
            "artifacts": _artifact_links(item, self.hooks.session.context.artifacts),
        }

    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        session = self.hooks.session
        json_report["environment"] = environment(session)
        json_report["predeploy"] = {
            "release": session.context.release,
            "previous_release": session.context.previous_release,
            "verdict": verdict(session, int(json_report.get("exitcode", 0))),
            "report_files": which_reports(session) if session.report_prefix else "this run's reports",
            "gates": {
                f"gate{g.number}": {"name": g.name, "status": g.status, "reason": g.reason, "figures": g.figures, "advisories": g.advisories}
                for g in sorted(session.controller.gates.values(), key=lambda g: g.number)
            },
        }
        # pytest-json-report takes captured output from the item, not from the report we redact.
        _redact_values(json_report, session.context.redactor.redact_report)


class MetadataHooks:
    """pytest-metadata: the environment table of the HTML report."""

    def __init__(self, hooks: ReportHooks) -> None:
        self.hooks = hooks

    def pytest_metadata(self, metadata: dict[str, Any], config: pytest.Config) -> None:
        metadata.update(environment(self.hooks.session))
        # pytest-metadata copies CI variables (BUILD_URL, GIT_URL ...) into the table, and a URL
        # may carry a token: every value is redacted like any other report text.
        _redact_values(metadata, self.hooks.session.context.redactor.redact)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # pytest-metadata calls pytest_metadata from its pytest_configure, which can run before
        # this plugin is registered (in-process runs); pytest-html reads the table at session start.
        self.pytest_metadata(session.config.stash[metadata_key], session.config)


def _redact_values(node: dict[str, Any] | list[Any], redact: Callable[[str], str]) -> None:
    """Redact every string in ``node`` in place, at any depth."""
    pairs: list[tuple[Any, Any]] = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, value in pairs:
        if isinstance(value, str):
            node[key] = redact(value)
        elif isinstance(value, (dict, list)):
            _redact_values(value, redact)


def register(config: pytest.Config, session: ProtocolSession) -> ReportHooks:
    hooks = ReportHooks(session)
    manager = config.pluginmanager
    manager.register(hooks, "predeploy-report")
    # Gate reports are not shortened: pytest's truncation of long values ('ghp_a1WxeVpG...') and
    # of diffs ("Skipping 110 identical leading characters") leaves pieces of a secret that no
    # redaction can recognise once they are short. Whole values are redacted. A user's own
    # verbosity_assertions wins (the redactor still takes leading and trailing pieces).
    if config.getini("verbosity_assertions") == "auto":
        config._inicache["verbosity_assertions"] = 2
    if manager.hasplugin("html"):
        # Rows in gate order (execution order), not pytest-html's default "failures first".
        # pytest has no public way to set an ini value; pytest-html reads it with getini, whose
        # cache this is (setting it before the report is written is enough).
        config._inicache["initial_sort"] = "original"
        manager.register(HtmlHooks(hooks), "predeploy-report-html")
    if manager.hasplugin("pytest_jsonreport"):
        manager.register(JsonHooks(hooks), "predeploy-report-json")
    if manager.hasplugin("metadata"):
        manager.register(MetadataHooks(hooks), "predeploy-report-metadata")
    return hooks


def github_step_summary(session: ProtocolSession, exit_status: int) -> None:
    """Append the verdict and a gate table to $GITHUB_STEP_SUMMARY when GitHub Actions provides one."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    hooks: ReportHooks | None = session.config.pluginmanager.get_plugin("predeploy-report")
    text = summary_markdown(hooks.decision(exit_status) if hooks is not None else decision(session, exit_status))
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(session.context.redactor.redact(text))
