"""pytest-predeploy: a release engineer's pre-deployment protocol as ordered, halting pytest gates.

The public API is :mod:`pytest_predeploy.api`; its names are also importable from here
(``from pytest_predeploy import load, require``).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pytest_predeploy.api import *  # noqa: F403


def __getattr__(name: str) -> Any:
    # A submodule not imported yet is the import system's to load (``from pytest_predeploy
    # import artifacts`` asks here first), never the API's.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Imported on first use, not at the top: pytest imports this package for the plugin entry
    # point in every run, and plain pytest runs must not pay for the API's models (pydantic).
    from pytest_predeploy import api

    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    from pytest_predeploy import api

    return sorted([*globals(), *api.__all__])
