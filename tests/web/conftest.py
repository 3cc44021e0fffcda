"""A real gateway on loopback and Debian's chromium driven by Playwright.

Playwright's own browser download is not used: `VDP_CHROMIUM` (default ``/usr/bin/chromium``,
installed by ``make setup``) is launched headless. A failing test leaves a screenshot of each of
its pages in `SCREENSHOTS` (``VDP_WEB_SCREENSHOTS`` overrides it).
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import MEDIA
from tests.service.gateway import LONG, REPO, Gateway

CHROMIUM = os.environ.get("VDP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("VDP_WEB_SCREENSHOTS", REPO / "test-artifacts" / "web-screenshots"))
SAMPLE = MEDIA / "sam2__05_default_juggle.mp4"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def web_gateway(tmp_path_factory) -> Gateway:
    """One gateway with an input root holding a long clip (for the job that gets cancelled)."""
    root = tmp_path_factory.mktemp("web-roots")
    shutil.copy(MEDIA / LONG, root / LONG)
    gw = Gateway(tmp_path_factory.mktemp("web-gateway") / "data", [root],
                 VDP_MAX_UPLOAD_BYTES=str(50_000_000))
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (make setup installs it; or set VDP_CHROMIUM)")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


class Offsite:
    """Every request the page tried to send beyond loopback (all are aborted)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def handle(self, route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK:
            self.urls.append(url)
            route.abort()
        else:
            route.continue_()


@pytest.fixture()
def offsite() -> Offsite:
    return Offsite()


def _new_context(browser, offsite: Offsite, **options):
    context = browser.new_context(**options)
    context.route("**/*", offsite.handle)
    context.set_default_timeout(30_000)
    return context


@pytest.fixture()
def context(browser, offsite, request):
    """A fresh browser profile (no cookies) whose off-loopback requests are blocked; on failure,
    each of its pages is saved as a screenshot."""
    ctx = _new_context(browser, offsite, viewport={"width": 1280, "height": 900})
    yield ctx
    _screenshots_on_failure(ctx, request)
    ctx.close()


@pytest.fixture()
def phone(browser, offsite, request):
    """A phone-sized profile (390x844, touch)."""
    ctx = _new_context(browser, offsite, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                       device_scale_factor=2)
    yield ctx
    _screenshots_on_failure(ctx, request)
    ctx.close()


def _screenshots_on_failure(ctx, request) -> None:
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if not failed:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    for i, page in enumerate(ctx.pages):
        path = SCREENSHOTS / f"{stem}-{i}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failed page: {path}")
        except Exception as exc:  # a crashed page cannot be captured; the failure is reported anyway
            print(f"no screenshot of page {i}: {exc}")
