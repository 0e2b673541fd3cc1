"""Fixtures of the console's tests: the demo site served as `make run` serves it, and headless Chromium
driven by Playwright (Debian's chromium, which `make test` installs; Playwright downloads nothing).

Screenshots of each page land in ``test-artifacts/console/`` (or ``CONSOLE_SCREENSHOT_DIR``), not in git,
for a reviewer to look at. Every request the browser makes is checked: one to any host but the site
fails the test (no CDN, no external font or tile, ever).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from tests.console.site import ROOT, Site, console_site

# One folder per database pass: `make test` runs the SQLite and PostgreSQL passes at once.
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or ROOT / "test-artifacts" / "console") / (
    "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
)
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
#: CONSOLE_CPU_THROTTLE=6: each tab's scripts run six times slower (Chromium's CPU throttling), to
#: replay a loaded CI machine: a test that waits for the wrong signal fails then, every time.
CPU_THROTTLE = float(os.environ.get("CONSOLE_CPU_THROTTLE") or 1)
OFFICE_SCREEN = {"width": 1366, "height": 768}
TABLET = {"width": 1024, "height": 768}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is required for the browser tests: `make test` installs it (Debian package chromium)"
    return path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with console_site(tmp_path_factory.mktemp("console-site")) as served:
        yield served


# Per package (tests/console, whose tests run one after another), not per session: while
# Playwright's sync API is open, an asyncio loop runs in this thread, and a later test's
# asyncio.run() (firebase-admin's HTTP client, tests/notifications) would refuse to start; no test
# in this package starts one. One Chromium for the package's six browser modules, not one each
# (a launch took 4 to 5 s on a loaded machine).
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Visit:
    """A browser tab on the site, that keeps what went wrong: requests to other hosts, failed
    requests, script errors and CSP violations (Chromium reports those as console errors)."""

    def __init__(self, page: Page, site: Site) -> None:
        self.page, self.site = page, site
        self.foreign_requests: list[str] = []
        self.failed_requests: list[str] = []
        self.script_errors: list[str] = []
        # A script error with its stack (the message alone does not say where, as in a minified library).
        page.on("pageerror", lambda error: self.script_errors.append(error.stack or str(error)))
        page.on("console", lambda message: message.type == "error" and self.script_errors.append(message.text))
        page.on("requestfailed", self._failed)
        page.route("**/*", self._only_the_site)

    def _failed(self, request: Request) -> None:
        # A request cut short by the next navigation (a favicon as the page moves on) is not a failure.
        if request.failure != "net::ERR_ABORTED" or not request.url.startswith(self.site.base_url):
            self.failed_requests.append(f"{request.url} ({request.failure})")

    def _only_the_site(self, route: object, request: Request) -> None:
        if request.url.startswith(self.site.base_url + "/") or request.url.startswith(("data:", "blob:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            self.foreign_requests.append(request.url)
            route.abort()  # type: ignore[attr-defined]

    def sign_in(self, role: str) -> None:
        login = self.site.logins[role]
        self.page.goto("/console/login")
        self.page.fill("input[name=phone]", login["phone"])
        self.page.fill("input[name=password]", login["password"])
        self.page.click("form button[type=submit]")
        self.page.wait_for_load_state("load")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        assert self.foreign_requests == [], "requests to other hosts: " + ", ".join(self.foreign_requests)
        assert self.failed_requests == [], "failed requests: " + ", ".join(self.failed_requests)
        assert self.script_errors == [], "script errors: " + " | ".join(self.script_errors)


@pytest.fixture
def visit(browser: Browser, site: Site) -> Iterator[Visit]:
    context = browser.new_context(base_url=site.base_url, viewport=OFFICE_SCREEN, accept_downloads=True,
                                  locale="zh-CN")
    tab = Visit(context.new_page(), site)
    if CPU_THROTTLE > 1:
        context.new_cdp_session(tab.page).send("Emulation.setCPUThrottlingRate", {"rate": CPU_THROTTLE})
    try:
        yield tab
    finally:
        context.close()
