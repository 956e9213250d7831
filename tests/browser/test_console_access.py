"""Who may do what in the console, in Debian's Chromium on a desktop and a phone (issue 19, items 2 and 6):
the admin gives a 专业值班员 a token on the users page and the token logs in; a verbal report refused to the
admin says in Chinese who may make it and the typed text is still in the form; the demo's role logins; the
duty office sees phone numbers as tel: links where the supervisor sees them masked; a form the role may not use is
shown disabled, saying who may."""
from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.common import ADMIN, DESKTOP, PHONE, launch, login, needs_chromium, shot

pytestmark = needs_chromium
SCREENS = pytest.mark.parametrize("screen", ["desktop", "phone"])
INCIDENT = {"source": "12345", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
            "place": "青溪路88号工地", "summary": "脚手架坍塌,2人受伤", "reporting_unit": "第1街道", "reporter": "街道值班员"}


@pytest.fixture
def demo_env(stack_env, monkeypatch):
    """The demo's logins on (as `yingji run` sets them), before the server starts."""
    from config import get_settings

    monkeypatch.setenv("YINGJI_DEMO_LOGINS", "true")
    get_settings.cache_clear()
    return stack_env


async def _context(browser, screen: str):
    return await browser.new_context(**(DESKTOP if screen == "desktop" else PHONE))


@SCREENS
async def test_admin_gives_a_token_and_a_refused_step_keeps_the_text(dev_env, stack_env, server, people, screen):
    from playwright.async_api import async_playwright, expect

    from tests.workflows.reporting_helpers import terminate_incidents
    from worker import build_worker

    expect.set_options(timeout=20_000)
    base = server
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await (await _context(browser, screen)).new_page()
            await login(page, base, ADMIN, "/console/users")
            await expect(page.get_by_role("heading", name="用户与令牌").first).to_be_visible()
            await page.locator("#new-role").select_option("duty_staff")
            await page.locator("#new-label").fill(f"新值班员 {screen}")
            await page.locator("#create-token").click()
            token = (await page.locator("#new-token").inner_text()).strip()
            assert token.startswith("yj_")
            await expect(page.locator("#tokens")).to_contain_text(f"新值班员 {screen}")
            await expect(page.locator("#tokens")).to_contain_text("专业值班员")
            await shot(page, f"access-users-{screen}")

            # the verbal report is the duty office's: the admin is refused, in Chinese, and keeps the text
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as api:
                made = await api.post("/api/incidents", json=INCIDENT)
                assert made.status_code == 201, made.text
                incident_id = made.json()["incident_id"]
            await page.goto(f"{base}/console/incidents/{incident_id}")
            form = page.locator("#form-verbal")
            await form.locator("input[name=to_whom]").fill("区政府总值班室王主任")
            await form.locator("input[name=note]").fill("电话口头报告,对方已记录")
            await form.get_by_role("button").click()
            await expect(page.locator("#step-error")).to_contain_text("管理员不能登记口头报告;可由:")
            await expect(page.locator("#step-error")).to_contain_text("专业值班员、值班干部、值班长、带班领导")
            form = page.locator("#form-verbal")
            await expect(form.locator("input[name=to_whom]")).to_have_value("区政府总值班室王主任")
            await expect(form.locator("input[name=note]")).to_have_value("电话口头报告,对方已记录")
            await expect(form.locator(".form-kept")).to_have_text("您填写的内容已保留。")
            await shot(page, f"access-refused-kept-{screen}")

            # the new token logs in, as a 专业值班员, who may make it
            staff = await (await _context(browser, screen)).new_page()
            await login(staff, base, token, f"/console/incidents/{incident_id}")
            await expect(staff.locator("header .who")).to_contain_text("专业值班员")
            form = staff.locator("#form-verbal")
            await form.locator("input[name=to_whom]").fill("区政府总值班室王主任")
            await form.get_by_role("button").click()
            await expect(staff.locator("#verbal-made")).to_contain_text("区政府总值班室王主任")
            await expect(staff.locator(".form-kept")).to_have_count(0)  # it went through: nothing given back
            # the written report is the duty cadre's: shown disabled to the 专业值班员, saying who may
            draft = staff.locator("#form-draft")
            await expect(draft.locator(".form-not-for-role")).to_have_text("您的角色(专业值班员)不能办理此项;可由:值班干部。")
            await expect(draft.locator("textarea[name=what_happened]")).to_be_disabled()
            await expect(draft.locator("button[type=submit]")).to_be_disabled()
            await shot(staff, f"access-new-token-verbal-{screen}")
        finally:
            await browser.close()
            await terminate_incidents(dev_env.client)


@SCREENS
async def test_demo_role_logins_and_phone_numbers(demo_env, server, people, screen):
    from playwright.async_api import async_playwright, expect

    from store.auth import create_token
    from store.db import session_scope
    from store.directory import Person

    expect.set_options(timeout=20_000)
    base = server
    with session_scope() as s:
        supervisor = create_token(s, "supervisor", None, "督查")
        mobile = s.get(Person, people["D01.head"]).mobile
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await (await _context(browser, screen)).new_page()
            await page.goto(f"{base}/console/login")
            demo = page.locator("#demo-logins")
            await expect(demo).to_contain_text("演示:以值班表角色登录")
            await expect(demo.locator("[data-demo-role=duty_chief]")).to_contain_text("演示:以值班长身份登录 · 值班长丁")
            await shot(page, f"access-demo-login-{screen}")
            await demo.locator("[data-demo-role=duty_chief]").click()
            await page.wait_for_url(f"{base}/console/desk*")
            await expect(page.locator("header .who")).to_contain_text("值班长丁")
            await expect(page.locator("header .who")).to_contain_text("值班长")

            # the duty chief calls people: whole numbers, tel: links; the unit kinds in Chinese
            await page.goto(f"{base}/console/directory?unit=D01")
            link = page.locator(f'a[href="tel:{mobile}"]')
            await expect(link).to_have_count(1)
            await expect(link).to_have_text(mobile)
            await expect(page.locator("main")).not_to_contain_text("district")
            await expect(page.locator("main")).to_contain_text("乡镇(街道)")
            await shot(page, f"access-directory-duty-{screen}")

            # the supervisor reads the records: masked, no link
            sup = await (await _context(browser, screen)).new_page()
            await login(sup, base, supervisor, "/console/directory?unit=D01")
            await expect(sup.locator("main")).to_contain_text(re.sub(r"\d{4}(\d{4})$", r"****\1", mobile))
            await expect(sup.locator('a[href^="tel:"]')).to_have_count(0)
            await shot(sup, f"access-directory-supervisor-{screen}")
        finally:
            await browser.close()
