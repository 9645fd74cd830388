"""The old home of the embedded local staging target, kept for copies of the deploy and rollback
scripts that run ``python -m pytest_predeploy.staging``; the target is
:mod:`pytest_predeploy.targets.local`."""

from __future__ import annotations

from pytest_predeploy.targets.local import *  # noqa: F403
from pytest_predeploy.targets.local import __all__ as __all__
