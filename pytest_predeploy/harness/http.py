"""The ``predeploy_http`` fixture for smoke suites: an HTTP client whose calls count towards
endpoint coverage when the services expose no request counters.

The smoke step loads this plugin into every suite it runs (``-p pytest_predeploy.harness.http``),
so a suite uses the fixture without importing anything; the recording itself is
:mod:`pytest_predeploy.rehearsal.requestlog`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_predeploy.rehearsal.requestlog import Response, request


@pytest.fixture(scope="session")
def predeploy_http() -> Callable[..., Response]:
    """``predeploy_http("GET", url, body=None, headers=None, timeout=10.0)`` returns a
    :class:`~pytest_predeploy.rehearsal.requestlog.Response` (status, body, ``json()``)."""
    return request
