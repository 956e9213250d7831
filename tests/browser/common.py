"""What the browser tests share: Debian's Chromium, the screen sizes, a token login, screenshots under
tests/artifacts/console/ (the fixtures, an API server of its own per test, are in conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ADMIN = "browser-admin"
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                              "(make test installs it: apt-get install chromium)")


async def shot(page, name: str) -> None:
    """A screenshot kept as an artifact: the page as it stands, CSS animations (the desk's alarm, the board's
    progress) stopped so the frame is still; up to 2 minutes (a full phone page at scale 2 took over Playwright's
    30 s on a busy machine while the board was updating)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled", timeout=120_000)


async def loaded(page) -> None:
    """The page as a person sees it once loaded (goto waits for its load event): what htmx fetches on load (the
    replay's state) in place too. Playwright's networkidle waited 500 ms after the last request on every page."""
    await page.wait_for_function("() => !document.querySelector('.htmx-request')")


async def login(page, base: str, token: str = ADMIN, next_path: str = "/console/desk") -> None:
    """Log in with a token on the console's login page and land on `next_path`."""
    await page.goto(f"{base}/console/login?next={next_path}")
    await page.locator("#token").fill(token)
    await page.locator("#token-login").click()
    await page.wait_for_url(f"{base}{next_path}*")


async def launch(pw):
    return await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)


DESKTOP = {"viewport": {"width": 1366, "height": 900}, "locale": "zh-CN"}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2,
         "locale": "zh-CN"}


async def confirmed_click(page, locator) -> None:
    """Click, and go ahead in the page's confirmation (api/console/static/confirm.js) when the element or its
    form carries data-confirm: the dialog is opened by the click itself, so it is there when asked."""
    asks = await locator.evaluate("el => !!(el.closest('[data-confirm]') || (el.form && el.form.dataset.confirm))")
    await locator.click()
    if asks:
        await page.locator("#confirm-dialog #confirm-go").click()
