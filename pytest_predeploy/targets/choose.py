"""The staging target a configuration names (``staging.target``)."""

from __future__ import annotations

from pytest_predeploy.targets.base import Target
from pytest_predeploy.targets.local import LocalTarget
from pytest_predeploy.targets.settings import TargetSettings


def target_for(settings: TargetSettings) -> Target:
    """The :class:`Target` of ``settings.staging.target``; building it starts nothing."""
    return LocalTarget(settings)
