"""PLACEHOLDER: replaced by the issue that implements observability."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class ObservabilityConfig(StrictModel):
    """Settings of observability."""
