"""A reporting chain settled by the end of the response (issue 19 #5) in Chromium, desktop and phone: the incident
page marks the verbal report never made 漏报 and the follow-up not yet due 未报(已终止), never 未到期; the desk no
longer lists the incident among the open ones. The chain is settled as the termination does it (its `settle` update,
tests/workflows/test_settle.py drives the termination itself). Screenshots in tests/artifacts/console/."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.browser.common import ADMIN, DESKTOP, PHONE, launch, login, needs_chromium, shot

pytestmark = needs_chromium


async def test_a_settled_incident_shows_omitted_and_leaves_the_desk(dev_env, stack_env, server, people):
    from playwright.async_api import async_playwright, expect

    from worker import build_worker
    from workflows.reporting import ChainView, SettleIn

    expect.set_options(timeout=20_000)
    base = server
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
            resp = await api.post("/api/incidents", json={
                "received_at": (datetime.now(UTC) - timedelta(minutes=40)).isoformat(), "source": "119",
                "category": "accident", "subtype": "建筑施工", "town_id": "330110001", "place": "青溪路88号工地",
                "summary": "脚手架坍塌", "reporting_unit": "区消防救援大队", "reporter": "王队长"})
            assert resp.status_code in (200, 201), resp.text
            inc = resp.json()
        iid, wid = inc["incident_id"], inc["workflow_id"]
        browser = await launch(pw)
        try:
            page = await (await browser.new_context(**DESKTOP)).new_page()
            await login(page, base)
            on_desk = page.locator(f'#desk-incidents a[href="/console/incidents/{iid}"]')
            await expect(on_desk).to_have_count(1)  # open: on the desk
            await page.goto(f"{base}/console/incidents/{iid}")
            await expect(page.locator('#deadlines tr[data-state="overdue"]')).to_have_count(1)  # the verbal report

            view = await dev_env.client.get_workflow_handle(wid).execute_update(
                "settle", SettleIn(by="activation/" + iid + "-work_safety", reason="应急响应终止"), result_type=ChainView)
            assert view.status == "closed" and {d.key: d.settled for d in view.deadlines} == {
                "verbal": "omitted", "written": "omitted"}

            await page.reload()
            rows = page.locator("#deadlines tbody tr")
            await expect(rows).to_have_count(2)
            await expect(page.locator('#deadlines tr[data-state="omitted"]')).to_have_count(2)
            await expect(page.locator("#deadlines")).to_contain_text("漏报")
            await expect(page.locator("#deadlines")).not_to_contain_text("未到期")
            await expect(page.locator("#inc-status")).to_have_text("已随响应终止办结")  # not 已终报: no final report
            await shot(page, "settled-incident-desktop")
            await page.goto(f"{base}/console/desk")
            await expect(page.locator("body")).to_contain_text("今日值班")
            await expect(on_desk).to_have_count(0)
            await shot(page, "settled-desk-desktop")

            phone = await (await browser.new_context(**PHONE)).new_page()
            await login(phone, base, next_path=f"/console/incidents/{iid}")
            await expect(phone.locator('#deadlines tr[data-state="omitted"]')).to_have_count(2)
            await expect(phone.locator("#deadlines")).to_contain_text("漏报")
            await shot(phone, "settled-incident-phone")
        finally:
            await browser.close()
