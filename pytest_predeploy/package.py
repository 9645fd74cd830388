"""PLACEHOLDER: replaced by the issue that implements package."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class PackageConfig(StrictModel):
    """Settings of package."""
