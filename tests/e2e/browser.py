"""Real Chromium for page tests: Debian's /usr/bin/chromium driven by Playwright, never a download.

A test that needs a browser takes the `page` fixture (or `chromium` for several pages); the
browser lives as long as the test module. On a
machine without Chromium it is skipped, saying why; `.ci/run` installs Debian's package.
Screenshots go to build/screenshots/ (not committed) so that a person can look at them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chromium import FLAGS

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
#: A phone's width (SPEC 7 and 8: usable at 390 px) and a desk's.
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}


def chromium_path() -> str:
    """Chromium's path, or the test is skipped with the reason."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run does)")
    return found


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for a test module, launched by Playwright from Debian's binary.

    Module scope, not session: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and a later test's asyncio.run() would fail beside it."""
    executable = chromium_path()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is a test dependency"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh page (own cookies and storage) at phone width."""
    context = chromium.new_context(viewport=PHONE)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Write a full-page screenshot under build/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
