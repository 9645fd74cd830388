"""The staging target a configuration names (``staging.target``).

A package of its own, above the contract (:mod:`pytest_predeploy.targets.base`) and the targets'
packages: it is the one place that knows them all, and nothing in ``targets`` imports it."""

from __future__ import annotations

from pytest_predeploy.targets.base import Target
from pytest_predeploy.targets.local import LocalTarget
from pytest_predeploy.targets.settings import TargetSettings


def target_for(settings: TargetSettings) -> Target:
    """The :class:`Target` of ``settings.staging.target``; building it starts nothing."""
    if settings.staging.target == "kube":
        # Imported here for start-up time only (~20 ms of models and engine code a local run never
        # uses); the import graph check counts this edge like any other.
        from pytest_predeploy.targets.kube.environment import KubeTarget

        return KubeTarget(settings)
    return LocalTarget(settings)
