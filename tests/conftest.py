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
    _import_the_whole_product()


def _import_the_whole_product() -> None:
    """Import every module of the product once, in this process, before any test runs.

    Why: pytester's in-process runs (``runpytest``, ``inline_run``) put ``sys.modules`` back as it
    was after each run, so every module the plugin imports only when a protocol runs (the harness,
    the steps, the report writers) was imported again in every in-process run, and compiled and
    assertion-rewritten from source each time wherever ``PYTHONDONTWRITEBYTECODE`` is set, as on
    CI: about 1 s of CPU per run, most of the suite's time. Modules imported before a run stay.
    Subprocess runs (start-up, the real end-to-end runs) still import the plugin as a user's
    pytest does; a test about what a run imports must look in a subprocess, never here."""
    import compileall
    import importlib
    import pkgutil

    import pytest_predeploy

    # The suite starts the product in hundreds of processes (steps, deploys, services, pytest runs
    # of fake projects). An editable install is not byte-compiled and PYTHONDONTWRITEBYTECODE
    # keeps Python from caching what it compiles, so each of them compiled the product from
    # source (~0.3 s of CPU each). Compile it once, as `pip install` does for a wheel; compileall
    # writes only what is out of date, atomically, so parallel workers share it.
    for folder in pytest_predeploy.__path__:
        compileall.compile_dir(folder, quiet=1)
    for module in pkgutil.walk_packages(pytest_predeploy.__path__, "pytest_predeploy."):
        # `__main__` modules run a command when imported; logcap.py is a script run as a file.
        if not module.name.endswith(("__main__", ".logcap")):
            importlib.import_module(module.name)
