"""What a gate module reads of the run: a read-only view of the ``predeploy`` fixture.

The fixture is the run's :class:`~pytest_predeploy.harness.context.RunContext`, which the steps use
to run scripts and which holds the whole configuration (step commands, secret sources ...). A
gate only reads artifacts and judges them against a few settings, so gate modules annotate the
fixture as :class:`GateContext` (``pytest_predeploy.api.GateContext``): the release, the artifacts
folder and the sections gates judge against, every member read-only for the type checker.
RunContext satisfies it as it is (``tests/test_api_surface.py`` checks that under mypy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pytest_predeploy.readiness.package import PackageConfig
    from pytest_predeploy.readiness.signoff import ReadinessConfig
    from pytest_predeploy.rehearsal.smoke import SmokeConfig
    from pytest_predeploy.targets.settings import RollbackConfig


class GateConfig(Protocol):
    """The settings of ``predeploy.yaml`` a gate judges evidence against."""

    @property
    def project(self) -> str: ...

    @property
    def smoke(self) -> SmokeConfig: ...

    @property
    def rollback(self) -> RollbackConfig: ...

    @property
    def package(self) -> PackageConfig: ...

    @property
    def readiness(self) -> ReadinessConfig: ...


class GateContext(Protocol):
    """The run as a gate sees it (the ``predeploy`` fixture)."""

    @property
    def release(self) -> str: ...

    @property
    def previous_release(self) -> str | None: ...

    @property
    def env(self) -> str: ...

    @property
    def artifacts(self) -> Path: ...

    @property
    def config(self) -> GateConfig: ...

    def artifact(self, name: str) -> Path: ...
