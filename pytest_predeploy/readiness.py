"""PLACEHOLDER: replaced by the issue that implements readiness."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class ReadinessConfig(StrictModel):
    """Settings of readiness."""
