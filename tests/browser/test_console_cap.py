"""The console's new call-out page in Chromium, desktop and phone (issue 19, items 3 and 4): the form and a
pasted CAP are two modes and the preview says which it used; a pasted CAP Update is shown (level 橙色→红色)
and applied; a pasted CAP Cancel shows the running call-out and how many are still being called, and
applying it ends the call-out (nobody more is called); a CAP sent five months ago shows its sent time
and age and starts only after an explicit confirmation. Screenshots: tests/artifacts/console/cap-*.png.
"""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.common import ADMIN, DESKTOP, PHONE, confirmed_click, launch, login, needs_chromium, shot
from tests.helpers import cap_at, cap_followup, poll

pytestmark = needs_chromium
SENDER = "qingxi-meteo@example.cn"  # tests.helpers.CAP's


async def _api(base: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
        return await api.get(path)


async def _json(base: str, path: str) -> dict:
    return (await _api(base, path)).json()


async def _paste(page, text: str) -> None:
    """CAP mode, the document pasted, previewed."""
    await page.goto(page.url.split("/console/")[0] + "/console/callouts/new")
    await page.locator(".modes label", has_text="粘贴 CAP").click()
    await page.get_by_label("CAP XML 文档").fill(text)
    await page.get_by_role("button", name="预览叫应对象").click()


async def _modes(page, tag: str) -> None:
    """The form and the CAP box are two modes: only the chosen one shows and is used."""
    from playwright.async_api import expect

    cap_box, event = page.get_by_label("CAP XML 文档"), page.get_by_label("灾种/事件")
    await expect(page.locator("#mode-form")).to_be_checked()
    await expect(cap_box).to_be_hidden()
    await event.fill("暴雨")
    await page.get_by_label("级别", exact=True).select_option("orange")
    await page.get_by_label("标题").fill("表单填写的暴雨橙色预警")
    await page.locator("#form-mode label", has_text="第1街道").click()
    await page.locator(".modes label", has_text="粘贴 CAP").click()
    await expect(event).to_be_hidden()
    await cap_box.fill(cap_at(f"qx-mode-{uuid.uuid4().hex[:8]}", datetime.now(UTC)))
    await page.get_by_role("button", name="预览叫应对象").click()
    mode = page.locator("#preview-mode")
    await expect(mode).to_have_attribute("data-mode", "cap")
    await expect(mode).to_contain_text("粘贴的 CAP 文档")
    await expect(page.locator("#preview")).to_contain_text("青溪区气象台发布暴雨橙色预警信号")
    await expect(page.locator("#preview")).not_to_contain_text("表单填写的")
    await shot(page, f"cap-{tag}-01-mode-cap")
    await page.locator(".modes label", has_text="填写表单").click()  # the pasted text stays, unused
    await expect(cap_box).to_be_hidden()
    await page.get_by_role("button", name="预览叫应对象").click()
    await expect(mode).to_have_attribute("data-mode", "form")
    await expect(page.locator("#preview")).to_contain_text("表单填写的暴雨橙色预警")
    await expect(page.locator("#preview")).not_to_contain_text("青溪区气象台发布")
    await shot(page, f"cap-{tag}-02-mode-form")
    # the mode switched after the preview: its start button starts nothing and the preview is shown again
    await page.locator(".modes label", has_text="粘贴 CAP").click()
    await confirmed_click(page, page.locator("#start-button"))
    await expect(page.locator("#start-refused")).to_contain_text("预览之后模式或内容已改动")
    await expect(mode).to_have_attribute("data-mode", "cap")
    await expect(page).to_have_url(re.compile(r"/console/callouts/new$"))
    assert (await _json(page.url.split("/console/")[0], "/api/callouts")) == []


async def _start_alert(page, base: str, tag: str, ident: str, sent: datetime) -> str:
    from playwright.async_api import expect

    await _paste(page, cap_at(ident, sent))
    await expect(page.locator("#preview-sender")).to_have_text(SENDER)
    await expect(page.locator("#preview-expires")).to_have_text("未注明")
    await expect(page.locator("#stale-warning")).to_have_count(0)
    start = page.locator("#start-button")
    assert "将向 11 人发起叫应" in (await start.get_attribute("data-confirm") or "")
    await confirmed_click(page, start)
    await page.wait_for_url(f"{base}/console/callouts/callout-*")
    await expect(page.locator("#board tbody tr[id^='t-']")).to_have_count(11)
    await shot(page, f"cap-{tag}-03-board")
    return page.url.rsplit("/", 1)[1]


async def _update(page, base: str, tag: str, cid: str, ident: str, sent: datetime) -> None:
    from playwright.async_api import expect

    await _paste(page, cap_followup("Update", f"{ident}-u1", ident, sent, datetime.now(UTC)))
    await expect(page.locator("#preview-msgtype")).to_have_text("更新")
    level = page.locator('#preview-changes tr[data-change="level"]')
    await expect(level).to_contain_text("橙色")
    await expect(level).to_contain_text("红色")
    await expect(page.locator("#preview-ref-callout")).to_have_attribute("href", f"/console/callouts/{cid}")
    apply = page.locator("#apply-button")
    await expect(apply).to_have_text("应用更新")
    assert "更新叫应" in (await apply.get_attribute("data-confirm") or "")
    await shot(page, f"cap-{tag}-04-update-preview")
    await confirmed_click(page, apply)
    await page.wait_for_url(f"{base}/console/callouts/{cid}")
    # the workflow records the new level and calls the red tier (the district's leaders) as well
    await poll(lambda: _json(base, f"/api/callouts/{cid}"), lambda c: c["level"] == "red" and any(
        "区长乙" in t["name"] for t in c["targets"]), what="the update applied")
    await goto_settled(page, f"{base}/console/callouts/{cid}")  # (the board may be reloading itself: not reload())
    await expect(page.locator(".badge.lv-red").first).to_have_text("红色")
    await expect(page.locator("#board tbody tr", has_text="区长乙")).to_have_count(1)
    await shot(page, f"cap-{tag}-05-updated")


async def _cancel(page, base: str, tag: str, cid: str, ident: str, sent: datetime) -> None:
    from playwright.async_api import expect

    await _paste(page, cap_followup("Cancel", f"{ident}-c1", ident, sent, datetime.now(UTC)))
    await expect(page.locator("#preview-msgtype")).to_have_text("解除")
    refs = page.locator("#preview-refs")
    await expect(refs).to_have_attribute("data-running", "true")
    calling = int(await refs.get_attribute("data-calling") or "0")
    assert calling > 0
    await expect(page.locator("#preview-calling")).to_have_text(str(calling))
    await expect(page.locator("#preview-cancel-will")).to_contain_text(f"仍在叫应的 {calling} 人不再被呼叫")
    apply = page.locator("#apply-button")
    assert f"{calling} 人不再被呼叫" in (await apply.get_attribute("data-confirm") or "")
    await shot(page, f"cap-{tag}-06-cancel-preview")
    await confirmed_click(page, apply)
    await page.wait_for_url(f"{base}/console/callouts/{cid}")
    await expect(page.locator("#status")).to_have_attribute("data-status", "canceled", timeout=30_000)
    await expect(page.locator("#status")).to_have_text("已取消")
    # nobody is being called any more
    detail = (await _api(base, f"/api/callouts/{cid}")).json()
    assert detail["status"] == "canceled"
    assert not {"pending", "notified", "escalated"} & {k for k, n in detail["counts"].items() if n}, detail["counts"]
    await shot(page, f"cap-{tag}-07-canceled")


async def _stale(page, base: str, tag: str) -> None:
    from playwright.async_api import expect

    ident = f"qx-old-{uuid.uuid4().hex[:8]}"
    sent = datetime.now(UTC) - timedelta(days=157)
    await _paste(page, cap_at(ident, sent))
    # shown in local time: sent on 31 Dec after 16:00 UTC reads as 1 January of the next year
    await expect(page.locator("#preview-sent")).to_contain_text(sent.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d"))
    await expect(page.locator("#preview-age")).to_contain_text("5个月")
    stale = page.locator("#stale-warning")
    await expect(stale).to_contain_text("旧预警")
    assert "5个月" in (await page.locator("#start-button").get_attribute("data-confirm") or "")
    await shot(page, f"cap-{tag}-08-stale-preview")
    # started without the confirmation: refused, the page still usable, nobody called
    await confirmed_click(page, page.locator("#start-button"))
    await expect(page.locator("#start-refused")).to_contain_text("未发起叫应")
    await expect(page).to_have_url(f"{base}/console/callouts/new")
    from api.services.warnings import warning_id_for

    wid = warning_id_for(SENDER, ident)
    assert (await _api(base, f"/api/warnings/{wid}")).status_code == 404
    await shot(page, f"cap-{tag}-09-stale-refused")
    await page.get_by_label("确认仍要叫应此旧预警").check()
    await confirmed_click(page, page.locator("#start-button"))
    await page.wait_for_url(f"{base}/console/callouts/callout-*")
    await expect(page.locator("#board tbody tr[id^='t-']")).to_have_count(11)
    row = (await _api(base, f"/api/warnings/{wid}")).json()
    assert row["meta"]["accepted_stale"] is True and row["meta"]["age"]["age_s"] >= 157 * 86400 - 60
    await shot(page, f"cap-{tag}-10-stale-started")


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_new_callout_modes_update_cancel_and_stale(dev_env, stack_env, server, people, size):
    from playwright.async_api import async_playwright, expect

    from worker import build_worker

    expect.set_options(timeout=20_000)
    base = server
    async with build_worker(dev_env.client, task_queue=stack_env["task_queue"]), async_playwright() as pw:
        browser = await launch(pw)
        try:
            ctx = await browser.new_context(**(DESKTOP if size == "desktop" else PHONE))
            page = await ctx.new_page()
            await login(page, base, next_path="/console/callouts/new")
            await _modes(page, size)
            ident, sent = f"qx-run-{uuid.uuid4().hex[:8]}", datetime.now(UTC).replace(microsecond=0)
            cid = await _start_alert(page, base, size, ident, sent)
            await _update(page, base, size, cid, ident, sent)
            await _cancel(page, base, size, cid, ident, sent)
            await _stale(page, base, size)
            if size == "phone":
                assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        except BaseException:
            for n, p in enumerate(p for c in browser.contexts for p in c.pages):
                await shot(p, f"failure-cap-{size}-{n}")
            raise
        finally:
            await browser.close()


async def goto_settled(page, url: str) -> None:
    """`page.goto(url)`, where the page may be navigating to the same place by itself (the board reloads when the
    call-out's level changes): that navigation interrupting ours is the same arrival, so wait for it instead."""
    from playwright.async_api import Error as PlaywrightError

    for _ in range(3):
        try:
            await page.goto(url)
            return
        except PlaywrightError as exc:
            if "interrupted by another navigation" not in str(exc):
                raise
            await page.wait_for_load_state()
    await page.goto(url)
