"""What a protocol run says and checks before anything deploys (registered as
``predeploy-preflight``): the report header, and that a collected test needing the previous
release has one."""

from __future__ import annotations

import pytest

from pytest_predeploy.config import ProjectConfig
from pytest_predeploy.harness.context import RunContext


class Preflight:
    def __init__(self, project: ProjectConfig, context: RunContext) -> None:
        self.project = project
        self.context = context

    def pytest_report_header(self) -> list[str]:
        ctx = self.context
        return [
            f"predeploy: release {ctx.release} (previous {ctx.previous_release or 'unknown'}), environment {ctx.env}",
            f"predeploy: config {self.project.path} (sha256 {self.project.digest[:12]}), artifacts {ctx.artifacts}",
        ]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._require_previous_release(items)

    def _require_previous_release(self, items: list[pytest.Item]) -> None:
        """A collected test that needs the previous release (the rollback rehearsal, or a step
        whose command names it) without one known is a usage error now, before anything deploys."""
        if self.context.previous_release:
            return
        # Fixture name of each scripted step (the deploy script runs in the "deployment" fixture).
        fixtures = {"parity": "parity", "deploy": "deployment", "smoke": "smoke", "rollback": "rollback", "security": "security"}
        wanted = {"rollback": "the rollback rehearsal returns staging to it"}
        for step, step_config in self.project.steps.items():
            if "previous_release" in step_config.placeholders():
                wanted.setdefault(fixtures[step], f"steps.{step}.command uses {{previous_release}}")
        for item in items:
            needs = [why for fixture, why in wanted.items() if fixture in getattr(item, "fixturenames", ())]
            if needs:
                raise pytest.UsageError(
                    f"{self.project.path}: previous_release is not set, and {item.nodeid} needs it ({needs[0]}); "
                    "set previous_release in the config or pass --predeploy-previous=TAG"
                )
