"""PLACEHOLDER: replaced by the issue that implements smoke."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class SmokeConfig(StrictModel):
    """Settings of smoke."""
