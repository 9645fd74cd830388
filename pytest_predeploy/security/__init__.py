"""Security and compliance audit. PLACEHOLDER: the security issue replaces this."""

from __future__ import annotations

from pytest_predeploy.fields import StrictModel


class SecurityConfig(StrictModel):
    """Security policy."""
