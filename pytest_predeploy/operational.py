"""PLACEHOLDER: replaced by the issue that implements operational."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class OperationalConfig(StrictModel):
    """Settings of operational."""
