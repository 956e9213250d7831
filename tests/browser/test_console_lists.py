"""The lists in Chromium (desktop and phone) against the real stack: after a call-out, the message log shows
names and Chinese statuses and filters; the header's search finds a person by part of their number; the
"导出 Excel" link downloads a workbook whose rows are the page's rows. Screenshots: tests/artifacts/console/."""
from __future__ import annotations

import re
import uuid

import httpx
from openpyxl import load_workbook

from tests.browser.common import ADMIN, DESKTOP, PHONE, launch, login, needs_chromium, shot
from tests.helpers import poll

pytestmark = needs_chromium
API = {"Authorization": f"Bearer {ADMIN}"}


async def _callout(base: str) -> tuple[str, list[dict]]:
    """An orange heavy-rain warning for two towns (11 people); the call-out's messages once all are sent."""
    async with httpx.AsyncClient(base_url=base, headers=API, timeout=30) as api:
        r = await api.post("/api/warnings", json={"identifier": f"lists-{uuid.uuid4().hex[:8]}", "level": "橙色",
                                                  "event": "暴雨", "areas": ["330110001", "330110002"]})
        assert r.status_code == 201, r.text
        cid = r.json()["callout_id"]

        async def sent():
            return (await api.get("/api/outbox", params={"subject": cid, "limit": 1000})).json()

        msgs = await poll(sent, lambda ms: len(ms) >= 11 and all(m["provider_id"] for m in ms), 60, "11 messages sent")
        return cid, msgs


async def _fail(base: str, message_id: int) -> None:
    async with httpx.AsyncClient(base_url=base, headers=API, timeout=30) as api:
        r = await api.post(f"/api/simulator/messages/{message_id}", json={"outcome": "failed"})
        assert r.status_code == 200, r.text


def _setup(people: dict[str, str]) -> str:
    """A duty officer's token; the town-2 head's number made distinctive (found below by part of it)."""
    from store.auth import create_token
    from store.db import session_scope
    from store.directory import Person

    with session_scope() as s:
        s.get(Person, people["330110002.head"]).mobile = "+8613588886666"
        return create_token(s, "duty_staff", label="值班员")


async def _page_rows(page) -> list[list[str]]:
    """Time, name, number, channel, status of each row of the log as the page shows them."""
    return await page.eval_on_selector_all("#messages tbody tr", """rows => rows.map(r =>
        [...r.querySelectorAll('td')].slice(0, 5).map(td => td.innerText.trim()))""")


async def test_message_log_search_and_export(dev_env, stack_env, server, people, tmp_path):
    from playwright.async_api import async_playwright, expect

    from worker import build_worker

    expect.set_options(timeout=20_000)
    base = server
    token = _setup(people)
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        cid, msgs = await _callout(base)
        failed = next(m for m in msgs if m["person_id"] == people["330110001.head"] and m["channel"] == "sms")
        await _fail(base, failed["id"])
        browser = await launch(pw)
        try:
            # desktop: from the navigation to the log; names and Chinese statuses, not ids
            page = await (await browser.new_context(**DESKTOP, accept_downloads=True)).new_page()
            await login(page, base, token)
            await page.get_by_role("navigation").get_by_role("link", name="消息记录").click()
            await expect(page).to_have_url(f"{base}/console/messages")
            rows = page.locator("#messages tbody tr")
            await expect(page.locator(f"#msg-{failed['id']}")).to_be_visible()
            assert await rows.count() >= 11
            await expect(page.locator("#messages")).to_contain_text("街道1主任")
            await expect(page.locator("#messages")).to_contain_text("已发送")
            await expect(page.locator(f"#msg-{failed['id']}")).to_contain_text("发送失败")
            await expect(page.locator(f"#msg-{failed['id']} td.reason")).to_have_text("发送失败")
            await expect(page.locator("#messages")).to_contain_text("暴雨")  # the call-out's title, a link
            await expect(page.locator("#messages")).not_to_contain_text(people["330110001.head"])
            body = await page.locator("#messages").inner_text()
            assert not re.search(r"\+86\d{11}", body), "a whole number on the log"
            assert not any(pid in body for pid in people.values()), "a person's id on the log"
            await shot(page, "lists-01-message-log")

            # filter by status, then by part of a name
            await page.locator("#log-filters select[name=status]").select_option(label="发送失败")
            await page.locator("#log-filters button[type=submit]").click()
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_contain_text("街道1主任")
            await page.goto(f"{base}/console/messages?who=街道2")
            await expect(page.locator("#log-filters input[name=who]")).to_have_value("街道2")
            shown = await _page_rows(page)
            assert shown and all("街道2" in r[1] for r in shown), shown
            await shot(page, "lists-02-message-log-filtered")

            # the export link downloads the rows the page shows (the filters applied)
            async with page.expect_download() as info:
                await page.locator("#log-export").click()
            download = await info.value
            assert re.fullmatch(r"消息记录-messages-\d{8}\.xlsx", download.suggested_filename)
            path = tmp_path / "log.xlsx"
            await download.save_as(path)
            sheet = [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]
            assert sheet[0][:5] == ["时间", "接收人", "号码", "渠道", "状态"]
            assert len(sheet) - 1 == len(shown)
            for cells, row in zip(sheet[1:], shown, strict=True):
                assert [cells[0].strftime("%Y-%m-%d %H:%M:%S"), cells[1], cells[2] or "—", *cells[3:5]] == row

            # the board's export: one row per person called, with their state
            await page.goto(f"{base}/console/callouts/{cid}")
            async with page.expect_download() as info:
                await page.locator("#targets-export").click()
            download = await info.value
            assert download.suggested_filename.startswith(f"叫应-{cid}-")
            await download.save_as(path)
            targets = [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]
            assert len(targets) == 12 and {r[4] for r in targets[1:]} <= {"已通知", "已应答", "已升级", "未叫应"}
            assert {r[0] for r in targets[1:]} == {"区级部门", "乡镇(街道)", "村(社区)"}, "tiers by their names"

            # the header's search: part of a number finds the person, with unit and post
            box = page.locator("header form.search input[name=q]")
            await box.fill("8888 66")
            await box.press("Enter")
            await expect(page).to_have_url(re.compile(r"/console/search\?q="))
            found = page.locator("#found-persons")
            await expect(found).to_contain_text("街道2主任")
            await expect(found).to_contain_text("第2街道")
            await expect(found).to_contain_text("+86135****6666")
            await shot(page, "lists-03-search")

            # the lists' date filters: local dates kept in the form, the export link carrying them
            await page.goto(f"{base}/console/incidents")
            await page.locator("input[name=date_from]").fill("2026-01-01")
            await page.get_by_role("button", name="筛选").click()
            await expect(page).to_have_url(re.compile(r"date_from=2026-01-01"))
            await expect(page.get_by_role("link", name="导出 Excel")).to_have_attribute(
                "href", re.compile(r"/console/export/incidents\.xlsx\?date_from=2026-01-01"))
            await shot(page, "lists-06-incidents-dates")
            await page.goto(f"{base}/console/directory")
            async with page.expect_download() as info:
                await page.locator("#directory-export").click()
            assert (await info.value).suggested_filename.startswith("通讯录-directory-")

            # phone: the log and the search fit the screen
            phone = await (await browser.new_context(**PHONE)).new_page()
            await login(phone, base, token, "/console/messages")
            await expect(phone.locator(f"#msg-{failed['id']}")).to_contain_text("发送失败")
            assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(phone, "lists-04-phone-message-log")
            await phone.locator("header form.search input[name=q]").fill("8888")
            await phone.locator("header form.search input[name=q]").press("Enter")
            await expect(phone.locator("#found-persons")).to_contain_text("街道2主任")
            assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(phone, "lists-05-phone-search")
        finally:
            await browser.close()
