"""Every pytest report redacted before anything reads it (registered as ``predeploy-redaction``)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_predeploy.core.redact import Redactor


class ReportRedaction:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # Every report (terminal, HTML, JSON, JUnit, the gate summary) is made from this object;
        # as the innermost wrapper we redact it before anything else reads it.
        report = yield
        # redact_report also takes secrets recognised by their content and the pieces of known
        # secrets that pytest's truncation of long values leaves ('ghp_a1WxeVpG...').
        redact = self.redactor.redact_report
        if report.longrepr is not None:
            text = report.longreprtext
            redacted = redact(text)
            if redacted != text:
                report.longrepr = redacted
        report.sections = [(title, redact(body)) for title, body in report.sections]
        report.user_properties = [(name, redact(value) if isinstance(value, str) else value) for name, value in report.user_properties]
        return report
