"""Staging parity (Protocol 10, step 1.2). PLACEHOLDER: the parity issue replaces this module."""

from __future__ import annotations

from pydantic import Field

from pytest_predeploy.fields import StrictModel
from pytest_predeploy.secrets import SecretSource


class EnvironmentConfig(StrictModel):
    """One environment (staging, production ...)."""

    description: str = Field("", description="Free text shown in reports.")
    secrets: SecretSource | None = Field(None, description="Where this environment's secret values come from.")


class ParityConfig(StrictModel):
    """Parity rules and waivers."""
