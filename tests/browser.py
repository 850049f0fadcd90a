"""Find the system Chromium and ChromeDriver for the browser tests, installing
Debian's packages when they are missing (the README's test command needs no
manual step). Fails with what to do when neither works: never skips."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANDIDATES = {
    "chromium": ("/usr/bin/chromium", "/usr/bin/chromium-browser"),
    "chromedriver": ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"),
}
HEADLESS_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--no-first-run",
)


@dataclass(frozen=True)
class Browser:
    """Paths of a working Chromium and its driver."""

    chromium: str
    chromedriver: str


def _find(name: str) -> str | None:
    for path in CANDIDATES[name]:
        if Path(path).exists():
            return path
    return shutil.which(name)


def _install() -> str:
    """apt-get install chromium chromium-driver (as root); the output on failure."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get: install Chromium and ChromeDriver yourself"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return done.stderr[-2000:]
    return ""


def find_or_install_browser() -> Browser:
    """The system Chromium, installed from Debian's packages if missing.

    Raises:
        RuntimeError: with the reason and the command to run when none is usable.
    """
    chromium, driver = _find("chromium"), _find("chromedriver")
    if chromium is None or driver is None:
        problem = _install()
        chromium, driver = _find("chromium"), _find("chromedriver")
        if chromium is None or driver is None:
            raise RuntimeError(
                "headless Chromium is needed for the browser tests and could not be installed "
                f"({problem.strip() or 'unknown reason'}); run: "
                "apt-get install chromium chromium-driver"
            )
    return Browser(chromium=chromium, chromedriver=driver)


def start_chromium(browser: Browser, *extra_args: str) -> Any:
    """A headless Chromium driven by selenium (``HEADLESS_ARGS`` plus ``extra_args``);
    the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for arg in (*HEADLESS_ARGS, *extra_args):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(browser.chromedriver), options=options)


@contextlib.contextmanager
def signed_in_chromium(browser: Browser, server: str, token: str) -> Iterator[tuple[Any, str]]:
    """A headless Chromium (selenium) signed in to the service at ``server`` with ``token``
    through the login form, and the base URL to open pages at (``localhost``: the session
    cookie is ``Secure``, which Chromium sends over plain http only there); quit on exit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = start_chromium(browser)
    try:
        driver.set_page_load_timeout(30)
        base = server.replace("127.0.0.1", "localhost")
        driver.get(base + "/ui/health")
        assert "/ui/login" in driver.current_url
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "sign-in").click()
        # The click does not wait for the sign-in to answer: a page opened at once could
        # abort it and land on the login page again (no session cookie yet).
        WebDriverWait(driver, 30).until(lambda d: "/ui/login" not in d.current_url)
        yield driver, base
    finally:
        driver.quit()
