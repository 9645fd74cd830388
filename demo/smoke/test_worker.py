"""The worker accepts jobs and completes them."""

from __future__ import annotations

import time
from typing import Any


def test_a_job_is_accepted_and_completes(urls: dict[str, str], http: Any) -> None:
    status, job = http("POST", urls["worker"] + "/jobs", {"kind": "smoke"})
    assert status == 202
    deadline = time.monotonic() + 5
    while True:
        status, state = http("GET", f"{urls['worker']}/jobs/{job['id']}")
        assert status == 200
        if state["status"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["status"] == "done"
