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
        redactor = self.redactor
        if redactor:
            if report.longrepr is not None:
                text = report.longreprtext
                if redactor.contains_secret(text.encode("utf-8", "surrogateescape")):
                    report.longrepr = redactor.redact(text)
            report.sections = [(title, redactor.redact(body)) for title, body in report.sections]
            report.user_properties = [(name, redactor.redact(value) if isinstance(value, str) else value) for name, value in report.user_properties]
        return report
