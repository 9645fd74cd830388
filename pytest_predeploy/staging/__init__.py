"""The embedded local staging target. PLACEHOLDER: the deployment rehearsal issue replaces this."""

from __future__ import annotations

from pydantic import Field

from pytest_predeploy.fields import StrictModel


class ServiceConfig(StrictModel):
    """One deployable service."""

    name: str = Field(description="Service name, used as {service} in commands.")


class LocalStagingConfig(StrictModel):
    """The local staging target."""


class RollbackConfig(StrictModel):
    """Rollback rehearsal settings."""
