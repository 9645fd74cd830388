"""Shared fixtures of the project's own test suite."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    # The suite's process checks need psutil, a test dependency: without it a plain `pytest` in a
    # venv made for the protocol alone (`pip install -e .`) would end in one ModuleNotFoundError
    # per module instead of saying what to install. A protocol run (`--predeploy-release`) loads
    # this file too (tests/ is the testpaths folder) and needs nothing of it.
    if config.getoption("predeploy_release", default=None):
        return
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise pytest.UsageError("this project's own tests need the test extra: pip install -e '.[test]' (psutil is not installed)") from None
