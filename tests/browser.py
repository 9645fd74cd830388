"""A real headless Chromium for the tests that open the HTML report (module-scoped fixture)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _chromium() -> str:
    """Debian's Chromium. Tests never install system packages: CI installs it before the suite
    (.ci/run, as root); elsewhere this test skips with the command that installs it."""
    found = shutil.which("chromium")
    if not found:
        pytest.skip("no Chromium on PATH: install it with `sudo apt-get install -y chromium` (Debian/Ubuntu) to run the browser test")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
