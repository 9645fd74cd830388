"""Each release does what its release notes say: the smoke suite tells v1.1 from v1.2 by behaviour.

After the rollback rehearsal these run against the previous release, so a rollback that left the
candidate's code running (under the older name) fails here, not only on ``/version``.

What changed in v1.2 (``demo/releases/v1.2/server.py``): the ``new-checkout`` endpoint
``POST /api/checkout`` (behind its flag, on in staging), orders ``confirmed`` instead of
``placed``, and a job's state names its ``queue``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.fixture(scope="session")
def since_v1_2(release: str) -> bool:
    """Whether the release under test is v1.2 or later (a '+dirty.<digest>' suffix is ignored)."""
    match = re.match(r"^v?(\d+)\.(\d+)", release)
    if match is None:
        pytest.skip(f"release {release!r} is not a version like v1.2: no release notes to check it against")
    return (int(match.group(1)), int(match.group(2))) >= (1, 2)


def test_api_new_checkout_exists_only_from_v1_2(urls: dict[str, str], http: Any, since_v1_2: bool) -> None:
    status, body = http("POST", urls["api"] + "/api/checkout", {"items": [{"product_id": 1, "quantity": 2}, {"product_id": 2, "quantity": 1}]})
    if since_v1_2:
        assert status == 201, f"new-checkout answered {status}: {body}"
        assert (body["status"], body["total"]) == ("confirmed", 108.0)
    else:
        assert status == 404, f"new-checkout answered {status} on a release before v1.2: {body}"


def test_api_order_status_follows_the_release(urls: dict[str, str], http: Any, since_v1_2: bool) -> None:
    status, order = http("POST", urls["api"] + "/api/orders", {"product_id": 3, "quantity": 1})
    assert status == 201
    assert order["status"] == ("confirmed" if since_v1_2 else "placed")
    assert ("total" in order) is since_v1_2


def test_worker_job_state_follows_the_release(urls: dict[str, str], http: Any, since_v1_2: bool) -> None:
    status, job = http("POST", urls["worker"] + "/jobs", {"kind": "release-check"})
    assert status == 202
    status, state = http("GET", f"{urls['worker']}/jobs/{job['id']}")
    assert status == 200
    assert ("queue" in state) is since_v1_2
