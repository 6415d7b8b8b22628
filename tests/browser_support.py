"""A selenium driver for Debian's headless chromium (chromium + chromium-driver), shared by the
browser tests. It skips only when chromium is absent and SQLSYNTH_REQUIRE_CHROMIUM is unset (.ci/run
sets it, so CI cannot skip silently)."""

from __future__ import annotations

import os
import shutil

import pytest


def _browser_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module", name="driver")
def browser_driver(tmp_path_factory):
    paths = _browser_paths()
    if paths is None:
        if os.environ.get("SQLSYNTH_REQUIRE_CHROMIUM"):
            pytest.fail("SQLSYNTH_REQUIRE_CHROMIUM is set but chromium / chromedriver are not installed "
                        "(apt-get install chromium chromium-driver)")
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900", "--disable-background-networking", "--no-first-run",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield browser
    finally:
        browser.quit()
