"""The printable console in Chromium, on a desktop and on a phone: the weekly 值班表 with its shift times
(reached from the desk, week by week, on paper without the console around it, as a PDF), the incident page
offering the written report as a 公文 (PDF and .docx, the newest draft marked 草稿), and the 六问 spot-check
and 通讯录确认 pages with their data and each its own schedule. Screenshots: tests/artifacts/console/print-*."""
from __future__ import annotations

import pytest

from tests.browser.common import ADMIN, ARTIFACTS, DESKTOP, PHONE, launch, login, needs_chromium, shot
from tests.console_print_data import CHECK, INCIDENT, ROUND, seed
from tests.helpers import clear_of_local_midnight

pytestmark = needs_chromium
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@pytest.fixture
def tokens(people):
    from store.auth import create_token
    from store.db import session_scope

    clear_of_local_midnight()  # the shifts are this week's, as the page will see it
    with session_scope() as s:
        seed(s, people)
        return {"chief": create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief")}


async def _fits(page) -> None:
    """Nothing wider than the screen (a phone scrolls down, never sideways)."""
    over = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert over <= 1, f"{page.url} is {over}px wider than the screen"


@pytest.mark.parametrize("size", SIZES)
async def test_weekly_roster_with_shift_times(server, tokens, size, request):
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)
    name = request.node.callspec.id
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await (await browser.new_context(**size)).new_page()
            await login(page, server, tokens["chief"])
            await page.locator("#desk-roster").click()
            await page.wait_for_url(f"{server}/console/roster*")
            await expect(page.locator("h1")).to_contain_text("值班表")
            await expect(page.locator("#roster-week")).to_contain_text("年第")
            await expect(page.locator("#shift-times")).to_contain_text("08:30–次日08:30")
            staff = page.locator('#roster-table tr[data-role="duty_staff"]')
            await expect(staff.locator(".duty-person")).to_have_count(7)
            if size is PHONE:  # day by day: each day's card names its posts, persons, shift times and phones
                await expect(page.locator("#roster-table")).to_be_hidden()
                days = page.locator("#roster-days > .card")
                await expect(days).to_have_count(7)
                monday = days.first
                await expect(monday.locator("h2")).to_contain_text("周一")
                await expect(monday).to_contain_text("专业值班员")
                # (the staff's entry: on a Monday the day's card also lists the people's fixture on duty today)
                staff_monday = monday.locator(".duty-person").filter(has_text="值班员己")
                await expect(staff_monday.locator(".shift-times")).to_have_text("08:30–次日08:30")
                await expect(monday.locator('a[href="tel:+8613900000405"]')).to_be_visible()
                await expect(page.locator("#roster-days .today")).to_contain_text("副区长丙")
            else:
                await expect(staff.locator(".shift-times").first).to_have_text("08:30–次日08:30")
                await expect(staff.locator('a[href="tel:+8613900000405"]').first).to_be_visible()
                await expect(page.locator("#roster-days")).to_be_hidden()
                await expect(page.locator('#roster-table tr[data-role="leading_leader"]')).to_contain_text("副区长丙")
            await _fits(page)
            await shot(page, f"print-roster-{name}")

            # on paper: the table alone, every day side by side, the console's header and buttons gone
            await page.emulate_media(media="print")
            await expect(page.locator("header.top")).to_be_hidden()
            await expect(page.locator(".roster-nav")).to_be_hidden()
            await expect(page.locator("#roster-table thead")).to_be_visible()  # the table, also from a phone
            await expect(page.locator("#roster-days")).to_be_hidden()
            await shot(page, f"print-roster-paper-{name}")
            await page.emulate_media(media="screen")

            pdf = await page.request.get(server + (await page.locator("#roster-pdf").get_attribute("href")))
            assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
            assert (await pdf.body()).startswith(b"%PDF-")
            (ARTIFACTS / f"print-roster-{name}.pdf").write_bytes(await pdf.body())  # kept to look at

            # week by week: next, then back twice (a week without shifts says so)
            week = page.url
            await page.locator("#roster-next").click()
            await expect(page).not_to_have_url(week)
            await page.locator("#roster-prev").click()
            await page.locator("#roster-prev").click()
            await expect(page.locator('#roster-table tr[data-role="duty_staff"] .duty-person')).to_have_count(0)
        finally:
            await browser.close()


@pytest.mark.parametrize("size", SIZES)
async def test_incident_page_offers_the_official_document(server, tokens, size, request):
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)
    name = request.node.callspec.id
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await (await browser.new_context(**size, accept_downloads=True)).new_page()
            await login(page, server, tokens["chief"], next_path=f"/console/incidents/{INCIDENT}")
            approved = page.locator('.gw-links[data-version="2"]')
            draft = page.locator('.gw-links[data-version="3"]')
            await page.locator("details").first.evaluate("d => d.parentElement.querySelectorAll('details').forEach(x => x.open = true)")
            await expect(approved.get_by_role("link", name="公文PDF")).to_be_visible()
            await expect(approved).not_to_contain_text("草稿")
            await expect(draft).to_contain_text("草稿")
            await expect(page.locator('.gw-links[data-version="1"]')).to_have_count(0)  # returned, superseded
            await _fits(page)
            await shot(page, f"print-incident-documents-{name}")
            async with page.expect_download() as got:
                await approved.get_by_role("link", name="公文Word").click()
            download = await got.value
            assert download.suggested_filename.endswith("-v2.docx"), download.suggested_filename
            await download.save_as(ARTIFACTS / f"print-gongwen-{name}.docx")
            import io

            import docx

            lines = [p.text for p in docx.Document(io.BytesIO(open(await download.path(), "rb").read())).paragraphs]
            assert "关于青溪路88号工地脚手架坍塌的报告" in lines and any("签发人：副区长丙" in x for x in lines)
            async with page.expect_download() as got:
                await draft.get_by_role("link", name="公文PDF").click()
            assert (await got.value).suggested_filename.endswith("-v3-草稿.pdf")
            await (await got.value).save_as(ARTIFACTS / f"print-gongwen-draft-{name}.pdf")
        finally:
            await browser.close()


@pytest.mark.parametrize("size", SIZES)
async def test_spotcheck_and_contact_pages(server, tokens, size, request):
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)
    name = request.node.callspec.id
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await (await browser.new_context(**size)).new_page()
            await login(page, server, tokens["chief"], next_path="/console/drills")
            tabs = page.locator("nav.duty-tabs")
            await expect(page.get_by_role("heading", name="演练 · 定时任务")).to_be_visible()
            await expect(page.locator('#schedules [data-schedule="spotcheck-sweep"]')).to_have_count(0)
            await tabs.get_by_role("link", name="六问抽查").click()
            await expect(page.get_by_role("heading", name="六问抽查 · 定时任务")).to_be_visible()
            await expect(page.locator('#schedules [data-schedule="spotcheck-sweep"]')).to_contain_text("六问抽查(叫应结束后)")
            await expect(tabs.get_by_role("link", name="通讯录确认")).to_have_count(0)  # admin only
            await _fits(page)
            await shot(page, f"print-spotchecks-{name}")
            await page.locator(f'#spotchecks [data-check="{CHECK}"] a').click()
            await expect(page.locator("#sc-questions li")).to_have_count(3)
            await expect(page.locator("#sc-answers .sc-no")).to_have_count(1)
            await expect(page.locator("#sc-answers .sc-no")).to_contain_text("否")
            await expect(page.locator("#sc-no-answers")).to_contain_text("隐患点巡查了吗?")
            followup = page.locator("#sc-followups tr[data-followup]")
            await expect(followup).to_contain_text("街道1主任")
            await expect(followup.locator(".countdown")).not_to_have_text("")  # counting down to the due time
            await _fits(page)
            await shot(page, f"print-spotcheck-{name}")

            await page.context.clear_cookies()
            await login(page, server, ADMIN, next_path="/console/contacts")
            await expect(page.get_by_role("heading", name="通讯录确认 · 定时任务")).to_be_visible()
            await expect(page.locator('#schedules [data-schedule="freshness-round"]')).to_contain_text("联系方式年度核实")
            await expect(page.locator("#stale")).to_contain_text("值班员己")
            await _fits(page)
            await shot(page, f"print-contacts-{name}")
            await page.locator(f'#rounds [data-round="{ROUND}"] a').click()
            await expect(page.locator('#round-persons tr[data-state="confirmed"]')).to_contain_text("街道1主任")
            await expect(page.locator('#round-persons tr[data-state="asked"]')).to_contain_text("号码失效")
            await page.locator("#round-filters").get_by_role("link", name="已确认").click()
            await expect(page.locator("#round-persons tr[data-person]")).to_have_count(1)
            await _fits(page)
            await shot(page, f"print-contact-round-{name}")
        finally:
            await browser.close()
